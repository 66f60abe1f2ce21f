-- Telling people and systems (issue 20): an outbox of events, subscriptions to them, and one
-- delivery per event and subscription with its attempts.
--
-- An event is written in the same transaction as the change that causes it (or by the scheduler
-- for dates, once per occasion), so nothing is told that did not happen and nothing that happened
-- is lost when a process dies. Workers then fan each event out to the subscriptions it matches
-- and deliver each delivery under a lease: one that a killed worker held expires and another
-- takes it up.
CREATE TABLE outbox_events (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    -- The organisation the event is about; NULL for national events (an advisory, a line's cap).
    organisation_code TEXT,
    subject TEXT NOT NULL,
    summary TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- The scheduler's occasion ("acknowledgement.due:12:RR8"): one event per occasion however
    -- often or on however many instances the scheduler runs. NULL for events a write caused.
    occasion TEXT UNIQUE,
    occurred_at TIMESTAMP NOT NULL,
    fanned_out BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX outbox_events_waiting ON outbox_events (id) WHERE NOT fanned_out;

CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    -- NULL: every organisation's events (admins and auditors only).
    organisation_code TEXT REFERENCES organisations (code),
    -- A JSON array of event kinds.
    kinds TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    email_cadence TEXT CHECK (email_cadence IN ('immediate', 'daily')),
    webhook_url TEXT,
    -- The signing secret (Standard Webhooks), shown once when the subscription is made.
    webhook_secret TEXT,
    created_at TIMESTAMP NOT NULL,
    CHECK ((channel = 'email' AND email_cadence IS NOT NULL AND webhook_url IS NULL AND webhook_secret IS NULL)
        OR (channel = 'webhook' AND email_cadence IS NULL AND webhook_url IS NOT NULL AND webhook_secret IS NOT NULL))
);
CREATE INDEX subscriptions_by_user ON subscriptions (user_id);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY NOT NULL,
    event_id BIGINT NOT NULL REFERENCES outbox_events (id),
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMP NOT NULL,
    -- A worker that took the delivery holds it until then; past it, another may take it.
    leased_until TIMESTAMP,
    leased_by TEXT,
    delivered_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    -- Failed attempts are retried until then (a day after it was made, or after a redelivery
    -- was asked for); past it the delivery is dead-lettered.
    retry_until TIMESTAMP NOT NULL,
    UNIQUE (event_id, subscription_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id, id);

CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY NOT NULL,
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempted_at TIMESTAMP NOT NULL,
    attempted_by TEXT NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0)
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);

-- At most one digest email per user per day.
CREATE TABLE email_digests (
    user_id BIGINT NOT NULL REFERENCES users (id),
    day DATE NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, day)
);

-- Hosts an admin allows webhooks to reach although they resolve to loopback or private ranges.
CREATE TABLE webhook_allowed_hosts (
    host TEXT PRIMARY KEY NOT NULL,
    allowed_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL
);
