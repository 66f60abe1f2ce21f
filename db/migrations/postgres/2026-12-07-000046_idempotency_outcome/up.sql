-- An idempotency key keeps what its claim made (the allocation, or the seat request of a line that
-- requires approval), not the HTTP status and body it was answered with: the ledger knows claims,
-- not responses, and the API and the web pages answer a retry each in their own way.
ALTER TABLE idempotency_keys ADD COLUMN allocation_id BIGINT REFERENCES allocations (id);
ALTER TABLE idempotency_keys ADD COLUMN seat_request_id BIGINT REFERENCES seat_requests (id);
-- The stored bodies were the allocation (201) or the seat request (202) as JSON.
UPDATE idempotency_keys SET allocation_id = (response_body::jsonb ->> 'id')::bigint
    WHERE response_status = 201 AND response_body LIKE '{%';
UPDATE idempotency_keys SET seat_request_id = (response_body::jsonb ->> 'id')::bigint
    WHERE response_status = 202 AND response_body LIKE '{%';
-- A key whose claim did not finish is only ever seen inside its own transaction.
DELETE FROM idempotency_keys WHERE allocation_id IS NULL AND seat_request_id IS NULL;
ALTER TABLE idempotency_keys DROP COLUMN response_status;
ALTER TABLE idempotency_keys DROP COLUMN response_body;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_one_outcome
    CHECK (allocation_id IS NULL OR seat_request_id IS NULL);
