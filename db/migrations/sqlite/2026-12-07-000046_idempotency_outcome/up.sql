-- An idempotency key keeps what its claim made (the allocation, or the seat request of a line that
-- requires approval), not the HTTP status and body it was answered with: the ledger knows claims,
-- not responses, and the API and the web pages answer a retry each in their own way.
ALTER TABLE idempotency_keys ADD COLUMN allocation_id BIGINT REFERENCES allocations (id);
ALTER TABLE idempotency_keys ADD COLUMN seat_request_id BIGINT REFERENCES seat_requests (id);
-- The stored bodies were the allocation (201) or the seat request (202) as JSON.
UPDATE idempotency_keys SET allocation_id = json_extract(response_body, '$.id')
    WHERE response_status = 201 AND json_valid(response_body);
UPDATE idempotency_keys SET seat_request_id = json_extract(response_body, '$.id')
    WHERE response_status = 202 AND json_valid(response_body);
-- A key whose claim did not finish is only ever seen inside its own transaction.
DELETE FROM idempotency_keys WHERE allocation_id IS NULL AND seat_request_id IS NULL;
ALTER TABLE idempotency_keys DROP COLUMN response_status;
ALTER TABLE idempotency_keys DROP COLUMN response_body;
