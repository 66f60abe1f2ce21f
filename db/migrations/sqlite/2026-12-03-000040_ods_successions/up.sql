-- Successions that ODS publishes (its "succ" file), proposed to an admin rather than applied:
-- confirming one runs the catalogue's succession (allocations and open obligations move to the
-- successor), rejecting one keeps the predecessor as it is. A pair is proposed once, whatever was
-- decided, so a later import of the same file does not propose a rejected succession again.
CREATE TABLE ods_successions (
    id INTEGER PRIMARY KEY NOT NULL,
    predecessor_code TEXT NOT NULL REFERENCES organisations (code),
    successor_code TEXT NOT NULL REFERENCES organisations (code),
    reason TEXT,
    effective_on DATE NOT NULL,
    status TEXT NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'confirmed', 'rejected')),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    decided_at TIMESTAMP,
    decided_by TEXT,
    CHECK (predecessor_code <> successor_code),
    UNIQUE (predecessor_code, successor_code)
);
CREATE INDEX ods_successions_status ON ods_successions (status, id);
