-- SQLite has one writer at a time, so events commit in id order: the transaction is always 0
-- and the change feed pages by id (see the PostgreSQL migration for why it needs more there).
ALTER TABLE audit_events ADD COLUMN transaction_id BIGINT NOT NULL DEFAULT 0;
CREATE INDEX audit_events_by_transaction ON audit_events (transaction_id, id);
