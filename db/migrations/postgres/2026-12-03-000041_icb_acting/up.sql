-- An ICB's grant that its officers may act for the organisations it commissions for (those whose
-- parent_code is the ICB, from ODS): one row while granted, none when not (the audit log keeps
-- the history of grants and revocations).
CREATE TABLE icb_acting_grants (
    icb_code TEXT PRIMARY KEY NOT NULL REFERENCES organisations (code),
    granted_by TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL
);
-- The ICB an act was made through, when an ICB's officer acted for another organisation (the
-- event's organisation_code): "ICB acting for RXX".
ALTER TABLE audit_events ADD COLUMN acting_icb TEXT;
