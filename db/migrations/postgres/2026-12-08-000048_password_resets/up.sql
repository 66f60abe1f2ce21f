-- Links that reset a forgotten password: at most one per account (a new link replaces the old
-- one, so older links stop working and the table never holds more rows than there are users),
-- swept once expired. The token itself is never stored: only its SHA-256, in hex.
CREATE TABLE password_resets (
    user_id BIGINT PRIMARY KEY NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    requested_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX password_resets_by_expiry ON password_resets (expires_at);
