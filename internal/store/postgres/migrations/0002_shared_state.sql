-- Coffer metadata schema on PostgreSQL, version 2 (SQLite version 8):
-- state that the nodes sharing the database share (see
-- internal/store/shared.go).

-- Request nonces (HBR SignatureNonce) until their expiry.
CREATE TABLE nonces (
    key        TEXT COLLATE "C"    NOT NULL PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX nonces_expiry ON nonces (expires_ms);

-- Change counters of vault repositories ("<account>/<region>/<vault>").
CREATE TABLE repo_versions (
    key        TEXT COLLATE "C"    NOT NULL PRIMARY KEY,
    epoch      BIGINT NOT NULL DEFAULT 0,
    generation BIGINT NOT NULL DEFAULT 0
);

-- Facts every node must agree on (e.g. key fingerprints), set once.
CREATE TABLE cluster_meta (
    name  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
