-- Coffer metadata schema, version 1. Times are INTEGER Unix milliseconds (UTC).
-- Every row is scoped by (account_id, region); lookups always include both.

CREATE TABLE vaults (
    account_id          TEXT    NOT NULL,
    region              TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    arn                 TEXT    NOT NULL UNIQUE,
    vault_type          TEXT    NOT NULL,
    vault_state         TEXT    NOT NULL,
    creation_ms         INTEGER NOT NULL,
    creator_request_id  TEXT    NOT NULL DEFAULT '',
    encryption_key_arn  TEXT    NOT NULL DEFAULT '',
    locked              INTEGER NOT NULL DEFAULT 0,
    lock_min_days       INTEGER,
    lock_max_days       INTEGER,
    lock_date_ms        INTEGER,
    access_policy       TEXT,
    PRIMARY KEY (account_id, region, name)
) WITHOUT ROWID;

-- Tags of any taggable resource (vault, recovery point, plan), by ARN.
CREATE TABLE tags (
    resource_arn TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (resource_arn, key)
) WITHOUT ROWID;

CREATE TABLE idempotency_tokens (
    account_id    TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    operation     TEXT    NOT NULL,
    token         TEXT    NOT NULL,
    params_digest TEXT    NOT NULL,
    result_id     TEXT    NOT NULL,
    expires_ms    INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, operation, token)
) WITHOUT ROWID;
CREATE INDEX idempotency_tokens_expiry ON idempotency_tokens (expires_ms);

CREATE TABLE recovery_points (
    arn                  TEXT    NOT NULL PRIMARY KEY,
    account_id           TEXT    NOT NULL,
    region               TEXT    NOT NULL,
    vault_name           TEXT    NOT NULL,
    vault_arn            TEXT    NOT NULL,
    source_vault_arn     TEXT    NOT NULL DEFAULT '',
    resource_arn         TEXT    NOT NULL,
    resource_type        TEXT    NOT NULL,
    resource_name        TEXT    NOT NULL DEFAULT '',
    iam_role_arn         TEXT    NOT NULL DEFAULT '',
    status               TEXT    NOT NULL,
    status_message       TEXT    NOT NULL DEFAULT '',
    storage_class        TEXT    NOT NULL DEFAULT 'WARM',
    backup_size_bytes    INTEGER NOT NULL DEFAULT 0,
    lc_cold_after_days   INTEGER,
    lc_delete_after_days INTEGER,
    lc_opt_in_archive    INTEGER,
    cold_at_ms           INTEGER,
    delete_at_ms         INTEGER,
    creation_ms          INTEGER NOT NULL,
    initiation_ms        INTEGER,
    completion_ms        INTEGER,
    last_restore_ms      INTEGER,
    encryption_key_arn   TEXT    NOT NULL DEFAULT '',
    manifest_id          TEXT    NOT NULL DEFAULT '',
    backup_job_id        TEXT    NOT NULL DEFAULT '',
    tags_json            TEXT    NOT NULL DEFAULT '{}',
    FOREIGN KEY (account_id, region, vault_name) REFERENCES vaults (account_id, region, name)
);
CREATE INDEX recovery_points_vault ON recovery_points (account_id, region, vault_name, creation_ms DESC, arn);
CREATE INDEX recovery_points_resource ON recovery_points (account_id, region, resource_arn, creation_ms DESC, arn);
CREATE INDEX recovery_points_delete_at ON recovery_points (delete_at_ms) WHERE delete_at_ms IS NOT NULL;

CREATE TABLE protected_resources (
    account_id               TEXT NOT NULL,
    region                   TEXT NOT NULL,
    resource_arn             TEXT NOT NULL,
    resource_type            TEXT NOT NULL,
    resource_name            TEXT NOT NULL DEFAULT '',
    last_backup_ms           INTEGER,
    last_backup_vault_arn    TEXT NOT NULL DEFAULT '',
    last_recovery_point_arn  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, region, resource_arn)
) WITHOUT ROWID;

-- Backup, copy and restore jobs share one table (kind column): the three AWS
-- shapes overlap heavily and the runner claims all kinds the same way.
CREATE TABLE jobs (
    kind                     TEXT    NOT NULL CHECK (kind IN ('BACKUP','COPY','RESTORE')),
    id                       TEXT    NOT NULL PRIMARY KEY,
    account_id               TEXT    NOT NULL,
    region                   TEXT    NOT NULL,
    state                    TEXT    NOT NULL,
    status_message           TEXT    NOT NULL DEFAULT '',
    message_category         TEXT    NOT NULL DEFAULT '',
    percent_done             TEXT    NOT NULL DEFAULT '',
    bytes_transferred        INTEGER NOT NULL DEFAULT 0,
    backup_size_bytes        INTEGER NOT NULL DEFAULT 0,
    creation_ms              INTEGER NOT NULL,
    completion_ms            INTEGER,
    initiation_ms            INTEGER,
    start_by_ms              INTEGER,
    expected_completion_ms   INTEGER,
    vault_name               TEXT    NOT NULL DEFAULT '',
    vault_arn                TEXT    NOT NULL DEFAULT '',
    destination_vault_arn    TEXT    NOT NULL DEFAULT '',
    recovery_point_arn       TEXT    NOT NULL DEFAULT '',
    destination_recovery_point_arn TEXT NOT NULL DEFAULT '',
    resource_arn             TEXT    NOT NULL DEFAULT '',
    resource_type            TEXT    NOT NULL DEFAULT '',
    resource_name            TEXT    NOT NULL DEFAULT '',
    iam_role_arn             TEXT    NOT NULL DEFAULT '',
    created_resource_arn     TEXT    NOT NULL DEFAULT '',
    parent_job_id            TEXT    NOT NULL DEFAULT '',
    is_parent                INTEGER NOT NULL DEFAULT 0,
    backup_type              TEXT    NOT NULL DEFAULT '',
    lc_cold_after_days       INTEGER,
    lc_delete_after_days     INTEGER,
    lc_opt_in_archive        INTEGER,
    backup_options_json      TEXT    NOT NULL DEFAULT '{}',
    created_by_json          TEXT    NOT NULL DEFAULT '',
    idempotency_token        TEXT    NOT NULL DEFAULT '',
    -- runner columns
    lease_owner              TEXT    NOT NULL DEFAULT '',
    lease_generation         INTEGER NOT NULL DEFAULT 0,
    lease_expiry_ms          INTEGER,
    heartbeat_ms             INTEGER,
    progress_percent         REAL    NOT NULL DEFAULT 0,
    parameters_json          TEXT    NOT NULL DEFAULT '{}',
    result_json              TEXT    NOT NULL DEFAULT '{}'
);
-- Stable page order: (account, creation DESC, id). One index per By* filter,
-- each ending in the page order so filtered lists are index range scans.
CREATE INDEX jobs_page           ON jobs (kind, account_id, region, creation_ms DESC, id);
CREATE INDEX jobs_all_accounts   ON jobs (kind, region, creation_ms DESC, id);
CREATE INDEX jobs_state          ON jobs (kind, account_id, region, state, creation_ms DESC, id);
CREATE INDEX jobs_resource_arn   ON jobs (kind, account_id, region, resource_arn, creation_ms DESC, id);
CREATE INDEX jobs_resource_type  ON jobs (kind, account_id, region, resource_type, creation_ms DESC, id);
CREATE INDEX jobs_vault          ON jobs (kind, account_id, region, vault_name, creation_ms DESC, id);
CREATE INDEX jobs_dest_vault     ON jobs (kind, account_id, region, destination_vault_arn, creation_ms DESC, id);
CREATE INDEX jobs_recovery_point ON jobs (kind, account_id, region, recovery_point_arn, creation_ms DESC, id);
CREATE INDEX jobs_parent         ON jobs (kind, account_id, region, parent_job_id, creation_ms DESC, id);
CREATE INDEX jobs_msg_category   ON jobs (kind, account_id, region, message_category, creation_ms DESC, id);
CREATE INDEX jobs_completion     ON jobs (kind, account_id, region, completion_ms);
-- Runner: claimable jobs by state and lease expiry.
CREATE INDEX jobs_claim          ON jobs (state, lease_expiry_ms);
