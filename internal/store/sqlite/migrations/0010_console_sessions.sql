-- Coffer metadata schema, version 10: web console sessions (see
-- internal/store/consolesessions.go). A session is kept by a hash of its
-- id, never the id itself; expired ones are deleted at sign-in.
CREATE TABLE console_sessions (
    id_hash       TEXT    NOT NULL PRIMARY KEY,
    account_id    TEXT    NOT NULL,
    access_key_id TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_expiry ON console_sessions (expires_ms);
