-- Attempts at a secret (a sign-in, the current password on a change), counted in the database so
-- that every instance behind a proxy throttles on the same counts. Rows are swept once their
-- window has passed; nothing here is audited (it records no change to the catalogue).
CREATE TABLE sign_in_attempts (
    throttle_key TEXT PRIMARY KEY NOT NULL CHECK (length(throttle_key) BETWEEN 1 AND 600),
    window_started TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL CHECK (attempts >= 0)
);
CREATE INDEX sign_in_attempts_by_window ON sign_in_attempts (window_started);
