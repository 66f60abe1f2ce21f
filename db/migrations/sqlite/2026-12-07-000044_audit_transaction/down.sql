DROP INDEX audit_events_by_transaction;
ALTER TABLE audit_events DROP COLUMN transaction_id;
