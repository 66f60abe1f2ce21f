-- Organisations from the Organisation Data Service (issue 19). ODS owns an imported
-- organisation's name, region, parent, postcode and dates; `ods_file` names the ODS file that
-- owns the record (`etr` for NHS trusts), and is NULL for organisations kept by hand.
-- `region` keeps the NHS England region's name; `region_code` is ODS's national grouping code
-- (Y56 is London). `parent_code` is the commissioning ICB or sub-ICB location ("high level
-- health geography"); it is not a reference, because ICBs need not be in the catalogue.
ALTER TABLE organisations ADD COLUMN region_code TEXT;
ALTER TABLE organisations ADD COLUMN parent_code TEXT;
ALTER TABLE organisations ADD COLUMN postcode TEXT;
ALTER TABLE organisations ADD COLUMN opened_on DATE;
ALTER TABLE organisations ADD COLUMN ods_file TEXT;
CREATE INDEX organisations_parent ON organisations (parent_code);
CREATE INDEX organisations_region_code ON organisations (region_code);
