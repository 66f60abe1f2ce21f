ALTER TABLE entitlements DROP COLUMN seats_version;
