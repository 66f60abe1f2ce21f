DROP TABLE agreement_extensions;
ALTER TABLE agreements DROP COLUMN commercial_source;
ALTER TABLE agreements DROP COLUMN notice_urls;
ALTER TABLE agreements DROP COLUMN initial_term_months;
ALTER TABLE agreements DROP COLUMN framework_lot;
ALTER TABLE agreements DROP COLUMN reseller_id;
ALTER TABLE agreements DROP COLUMN currency;
ALTER TABLE agreements DROP COLUMN value_minor;
