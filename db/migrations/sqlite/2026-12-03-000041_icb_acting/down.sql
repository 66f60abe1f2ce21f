ALTER TABLE audit_events DROP COLUMN acting_icb;
DROP TABLE icb_acting_grants;
