-- Restricted lines and NHSmail service eligibility (issue 16).
--
-- A line may require the national team's approval: a claim on it is held as a seat request, and
-- takes seats only when approved. A line may cap what one organisation holds of it. A line that
-- is the national provision for one NHSmail service (Standard or Enhanced, from January 2024) is
-- offered only to organisations recorded with that service on the day asked about.
ALTER TABLE entitlements ADD COLUMN requires_approval BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE entitlements ADD COLUMN per_organisation_cap BIGINT CHECK (per_organisation_cap IS NULL OR per_organisation_cap BETWEEN 1 AND 1000000000);
ALTER TABLE entitlements ADD COLUMN nhsmail_service TEXT CHECK (nhsmail_service IS NULL OR nhsmail_service IN ('standard', 'enhanced'));

-- A claim held for approval. It holds no seats: the ledger's invariants (the sum of live
-- allocations is the line's total, within its cap) are over approved seats only. An approved
-- request names the allocation its approval made; a refused one says why.
CREATE TABLE seat_requests (
    id INTEGER PRIMARY KEY NOT NULL,
    entitlement_id BIGINT NOT NULL REFERENCES entitlements (id),
    organisation_code TEXT NOT NULL REFERENCES organisations (code),
    quantity BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 10000000),
    reference TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'refused', 'withdrawn')),
    reason TEXT,
    allocation_id BIGINT REFERENCES allocations (id),
    requested_by BIGINT REFERENCES users (id),
    requested_at TIMESTAMP NOT NULL,
    decided_by BIGINT REFERENCES users (id),
    decided_at TIMESTAMP,
    CHECK ((status = 'approved') = (allocation_id IS NOT NULL)),
    CHECK (status <> 'refused' OR (reason IS NOT NULL AND length(reason) > 0)),
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX seat_requests_entitlement ON seat_requests (entitlement_id);
CREATE INDEX seat_requests_organisation ON seat_requests (organisation_code);
CREATE INDEX seat_requests_pending ON seat_requests (requested_at) WHERE status = 'pending';

-- The NHSmail service an organisation takes, over time (an organisation may move from Standard
-- to Enhanced). Periods of one organisation do not overlap: the data layer refuses an overlap.
CREATE TABLE nhsmail_service_periods (
    id INTEGER PRIMARY KEY NOT NULL,
    organisation_code TEXT NOT NULL REFERENCES organisations (code),
    service TEXT NOT NULL CHECK (service IN ('standard', 'enhanced')),
    starts_on DATE NOT NULL,
    ends_on DATE,
    source TEXT,
    CHECK (ends_on IS NULL OR ends_on >= starts_on)
);
CREATE INDEX nhsmail_service_periods_organisation ON nhsmail_service_periods (organisation_code);
