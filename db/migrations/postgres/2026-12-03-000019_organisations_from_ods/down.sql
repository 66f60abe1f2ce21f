DROP INDEX organisations_region_code;
DROP INDEX organisations_parent;
ALTER TABLE organisations
    DROP COLUMN ods_file,
    DROP COLUMN opened_on,
    DROP COLUMN postcode,
    DROP COLUMN parent_code,
    DROP COLUMN region_code;
