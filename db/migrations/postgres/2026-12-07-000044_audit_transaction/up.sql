-- The transaction that wrote each audit event (its 64-bit id), for the change feed: an event's
-- id is taken when it is written, not when its transaction commits, so a reader paging by id
-- could pass an event whose transaction was still running. Every transaction whose id is below
-- the oldest one still running has ended, so the feed reads only those, in (transaction, id)
-- order, and never misses one. Existing events take the migration's transaction (all ended).
ALTER TABLE audit_events
    ADD COLUMN transaction_id BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX audit_events_by_transaction ON audit_events (transaction_id, id);
