ALTER TABLE products DROP COLUMN successor_id;
DROP TABLE lifecycle_holds;
DROP TABLE lifecycle_sources;
DROP TABLE releases;
