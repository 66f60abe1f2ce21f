-- Counts every change of an entitlement's seats, so that caches of the ledger's totals apply
-- only newer values, whatever order their refreshes arrive in.
ALTER TABLE entitlements ADD COLUMN seats_version BIGINT NOT NULL DEFAULT 0;
