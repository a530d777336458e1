-- Coffer metadata schema, version 5: protected resources of every type in
-- one table. A resource is (account, region, type, id); attrs_json holds
-- the type's own attributes (EFS: {"path": "/srv/app"}), read only by that
-- type's plugin. The file systems of version 2 move here as type EFS.
CREATE TABLE resources (
    account_id             TEXT    NOT NULL,
    region                 TEXT    NOT NULL,
    type                   TEXT    NOT NULL,
    id                     TEXT    NOT NULL,
    arn                    TEXT    NOT NULL UNIQUE,
    name                   TEXT    NOT NULL DEFAULT '',
    tags_json              TEXT    NOT NULL DEFAULT '{}',
    attrs_json             TEXT    NOT NULL DEFAULT '{}',
    creation_ms            INTEGER NOT NULL,
    created_by_restore_job TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, region, type, id)
) WITHOUT ROWID;

INSERT INTO resources (account_id, region, type, id, arn, name, tags_json, attrs_json, creation_ms, created_by_restore_job)
    SELECT account_id, region, 'EFS', id, arn, name, tags_json, json_object('path', path), creation_ms, created_by_restore_job
    FROM file_systems;

DROP TABLE file_systems;
