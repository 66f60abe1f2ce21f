-- The bodies cannot be rebuilt here: keys go back empty, so a retry after the downgrade claims anew.
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_one_outcome;
ALTER TABLE idempotency_keys ADD COLUMN response_status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE idempotency_keys ADD COLUMN response_body TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP COLUMN allocation_id;
ALTER TABLE idempotency_keys DROP COLUMN seat_request_id;
