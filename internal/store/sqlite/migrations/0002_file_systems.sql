-- Coffer metadata schema, version 2: file-system resources (AWS type EFS).
-- Configured ones are upserted from the config at start; restores with
-- newFileSystem=true add their own (created_by_restore_job set).
CREATE TABLE file_systems (
    account_id             TEXT    NOT NULL,
    region                 TEXT    NOT NULL,
    id                     TEXT    NOT NULL,
    arn                    TEXT    NOT NULL UNIQUE,
    path                   TEXT    NOT NULL,
    name                   TEXT    NOT NULL DEFAULT '',
    tags_json              TEXT    NOT NULL DEFAULT '{}',
    creation_ms            INTEGER NOT NULL,
    created_by_restore_job TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, region, id)
) WITHOUT ROWID;

-- Runner: at most one running backup per resource is checked by resource.
CREATE INDEX jobs_resource_state ON jobs (kind, resource_arn, state);
