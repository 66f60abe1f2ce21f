DROP TABLE nhsmail_service_periods;
DROP TABLE seat_requests;
ALTER TABLE entitlements DROP COLUMN nhsmail_service;
ALTER TABLE entitlements DROP COLUMN per_organisation_cap;
ALTER TABLE entitlements DROP COLUMN requires_approval;
