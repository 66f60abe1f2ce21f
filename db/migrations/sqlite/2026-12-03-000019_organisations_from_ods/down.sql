DROP INDEX organisations_region_code;
DROP INDEX organisations_parent;
ALTER TABLE organisations DROP COLUMN ods_file;
ALTER TABLE organisations DROP COLUMN opened_on;
ALTER TABLE organisations DROP COLUMN postcode;
ALTER TABLE organisations DROP COLUMN parent_code;
ALTER TABLE organisations DROP COLUMN region_code;
