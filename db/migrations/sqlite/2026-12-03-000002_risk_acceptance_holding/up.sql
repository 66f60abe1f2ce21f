-- The unsupported-software report asks, for each holding it reads, whether the organisation has a
-- risk acceptance for the product: without this index every question scanned the table.
CREATE INDEX risk_acceptances_holding ON risk_acceptances (organisation_code, product_id);
