-- Coffer metadata schema on PostgreSQL, version 5 (SQLite version 10): web
-- console sessions (see internal/store/consolesessions.go). A session is
-- kept by a hash of its id, never the id itself; expired ones are deleted
-- at sign-in.
CREATE TABLE console_sessions (
    id_hash       TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    account_id    TEXT   NOT NULL,
    access_key_id TEXT   NOT NULL,
    created_ms    BIGINT NOT NULL,
    expires_ms    BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_ms);
