-- Coffer metadata schema on PostgreSQL, version 1: the SQLite schema of
-- versions 1 to 6 (see internal/store/sqlite/migrations) in one step.
-- Times are BIGINT Unix milliseconds (UTC), as on SQLite, so page cursors
-- are the same on both. Columns that lists are ordered or paged by use the
-- "C" collation: byte order, whatever the database's locale, so that the
-- order is SQLite's.

CREATE TABLE vaults (
    account_id          TEXT    NOT NULL,
    region              TEXT    NOT NULL,
    name                TEXT    COLLATE "C" NOT NULL,
    arn                 TEXT    NOT NULL UNIQUE,
    vault_type          TEXT    NOT NULL,
    vault_state         TEXT    NOT NULL,
    creation_ms         BIGINT  NOT NULL,
    creator_request_id  TEXT    NOT NULL DEFAULT '',
    encryption_key_arn  TEXT    NOT NULL DEFAULT '',
    locked              BOOLEAN NOT NULL DEFAULT false,
    lock_min_days       BIGINT,
    lock_max_days       BIGINT,
    lock_date_ms        BIGINT,
    access_policy       TEXT,
    PRIMARY KEY (account_id, region, name)
);

CREATE TABLE tags (
    resource_arn TEXT COLLATE "C" NOT NULL,
    key          TEXT COLLATE "C" NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (resource_arn, key)
);

CREATE TABLE idempotency_tokens (
    account_id    TEXT   NOT NULL,
    region        TEXT   NOT NULL,
    operation     TEXT   NOT NULL,
    token         TEXT   NOT NULL,
    params_digest TEXT   NOT NULL,
    result_id     TEXT   NOT NULL,
    expires_ms    BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, operation, token)
);
CREATE INDEX idempotency_tokens_expiry ON idempotency_tokens (expires_ms);

CREATE TABLE recovery_points (
    arn                  TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    account_id           TEXT    NOT NULL,
    region               TEXT    NOT NULL,
    vault_name           TEXT    COLLATE "C" NOT NULL,
    vault_arn            TEXT    NOT NULL,
    source_vault_arn     TEXT    NOT NULL DEFAULT '',
    resource_arn         TEXT    COLLATE "C" NOT NULL,
    resource_type        TEXT    NOT NULL,
    resource_name        TEXT    NOT NULL DEFAULT '',
    iam_role_arn         TEXT    NOT NULL DEFAULT '',
    status               TEXT    NOT NULL,
    status_message       TEXT    NOT NULL DEFAULT '',
    storage_class        TEXT    NOT NULL DEFAULT 'WARM',
    backup_size_bytes    BIGINT  NOT NULL DEFAULT 0,
    lc_cold_after_days   BIGINT,
    lc_delete_after_days BIGINT,
    lc_opt_in_archive    BOOLEAN,
    cold_at_ms           BIGINT,
    delete_at_ms         BIGINT,
    creation_ms          BIGINT  NOT NULL,
    initiation_ms        BIGINT,
    completion_ms        BIGINT,
    last_restore_ms      BIGINT,
    encryption_key_arn   TEXT    NOT NULL DEFAULT '',
    manifest_id          TEXT    NOT NULL DEFAULT '',
    backup_job_id        TEXT    NOT NULL DEFAULT '',
    tags_json            TEXT    NOT NULL DEFAULT '{}',
    FOREIGN KEY (account_id, region, vault_name) REFERENCES vaults (account_id, region, name)
);
CREATE INDEX recovery_points_vault ON recovery_points (account_id, region, vault_name, creation_ms DESC, arn);
CREATE INDEX recovery_points_resource ON recovery_points (account_id, region, resource_arn, creation_ms DESC, arn);
CREATE INDEX recovery_points_page ON recovery_points (account_id, region, creation_ms DESC, arn);
CREATE INDEX recovery_points_delete_at ON recovery_points (delete_at_ms) WHERE delete_at_ms IS NOT NULL;

CREATE TABLE protected_resources (
    account_id                     TEXT   NOT NULL,
    region                         TEXT   NOT NULL,
    resource_arn                   TEXT   COLLATE "C" NOT NULL,
    resource_type                  TEXT   NOT NULL,
    resource_name                  TEXT   NOT NULL DEFAULT '',
    last_backup_ms                 BIGINT,
    last_backup_vault_arn          TEXT   NOT NULL DEFAULT '',
    last_recovery_point_arn        TEXT   NOT NULL DEFAULT '',
    latest_restore_exec_minutes    BIGINT,
    latest_restore_job_creation_ms BIGINT,
    latest_restore_rp_creation_ms  BIGINT,
    PRIMARY KEY (account_id, region, resource_arn)
);

-- Backup, copy and restore jobs share one table (kind column), as on SQLite.
CREATE TABLE jobs (
    kind                     TEXT    NOT NULL CHECK (kind IN ('BACKUP','COPY','RESTORE')),
    id                       TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    account_id               TEXT    NOT NULL,
    region                   TEXT    NOT NULL,
    state                    TEXT    NOT NULL,
    status_message           TEXT    NOT NULL DEFAULT '',
    message_category         TEXT    NOT NULL DEFAULT '',
    percent_done             TEXT    NOT NULL DEFAULT '',
    bytes_transferred        BIGINT  NOT NULL DEFAULT 0,
    backup_size_bytes        BIGINT  NOT NULL DEFAULT 0,
    creation_ms              BIGINT  NOT NULL,
    completion_ms            BIGINT,
    initiation_ms            BIGINT,
    start_by_ms              BIGINT,
    expected_completion_ms   BIGINT,
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
    is_parent                BOOLEAN NOT NULL DEFAULT false,
    backup_type              TEXT    NOT NULL DEFAULT '',
    lc_cold_after_days       BIGINT,
    lc_delete_after_days     BIGINT,
    lc_opt_in_archive        BOOLEAN,
    backup_options_json      TEXT    NOT NULL DEFAULT '{}',
    created_by_json          TEXT    NOT NULL DEFAULT '',
    idempotency_token        TEXT    NOT NULL DEFAULT '',
    lease_owner              TEXT    NOT NULL DEFAULT '',
    lease_generation         BIGINT  NOT NULL DEFAULT 0,
    lease_expiry_ms          BIGINT,
    heartbeat_ms             BIGINT,
    progress_percent         DOUBLE PRECISION NOT NULL DEFAULT 0,
    parameters_json          TEXT    NOT NULL DEFAULT '{}',
    result_json              TEXT    NOT NULL DEFAULT '{}',
    rp_creation_ms           BIGINT,
    labels_json              TEXT
);
-- Page order: creation DESC, id; one index per By* filter ending in it.
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
CREATE INDEX jobs_restore_by_resource ON jobs (kind, account_id, region, resource_arn, rp_creation_ms);
-- Runner: waiting jobs in claim order, running jobs by lease expiry, and
-- running backups by resource (at most one runs per resource).
CREATE INDEX jobs_waiting        ON jobs (creation_ms, id) WHERE state IN ('CREATED', 'PENDING');
CREATE INDEX jobs_active         ON jobs (lease_expiry_ms) WHERE state IN ('RUNNING', 'ABORTING');
CREATE INDEX jobs_resource_state ON jobs (kind, resource_arn, state);
-- Job summaries: the grouped columns inside the index (index-only scans).
CREATE INDEX jobs_summary_account ON jobs (kind, account_id, region, creation_ms) INCLUDE (state, resource_type, message_category);
CREATE INDEX jobs_summary_all     ON jobs (kind, region, creation_ms) INCLUDE (state, resource_type, message_category, account_id);

CREATE TABLE resources (
    account_id             TEXT   NOT NULL,
    region                 TEXT   NOT NULL,
    type                   TEXT   NOT NULL,
    id                     TEXT   COLLATE "C" NOT NULL,
    arn                    TEXT   NOT NULL UNIQUE,
    name                   TEXT   NOT NULL DEFAULT '',
    tags_json              TEXT   NOT NULL DEFAULT '{}',
    attrs_json             TEXT   NOT NULL DEFAULT '{}',
    creation_ms            BIGINT NOT NULL,
    created_by_restore_job TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, region, type, id)
);
