-- Coffer metadata schema, version 7: state that nodes sharing a metadata
-- store share (see internal/store/shared.go). A single node on SQLite uses
-- the key fingerprints; the other tables serve the same contract.

-- Request nonces (HBR SignatureNonce) until their expiry.
CREATE TABLE nonces (
    key        TEXT    NOT NULL PRIMARY KEY,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX nonces_expiry ON nonces (expires_ms);

-- Change counters of vault repositories ("<account>/<region>/<vault>").
CREATE TABLE repo_versions (
    key        TEXT    NOT NULL PRIMARY KEY,
    epoch      INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Facts every node must agree on (e.g. key fingerprints), set once.
CREATE TABLE cluster_meta (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
