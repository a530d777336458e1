-- Coffer metadata schema on PostgreSQL, version 3 (SQLite version 7):
-- backup plans, selections, the scheduler's occurrence claims, legal holds
-- and account settings. Times are BIGINT Unix milliseconds; ordered or
-- paged text columns use the "C" collation (byte order, as on SQLite).

-- A plan is (account, region, id); its versions are documents (JSON: name,
-- rules, advanced settings). current_version names the one in force.
CREATE TABLE backup_plans (
    account_id         TEXT   NOT NULL,
    region             TEXT   NOT NULL,
    id                 TEXT   COLLATE "C" NOT NULL,
    arn                TEXT   NOT NULL UNIQUE,
    name               TEXT   COLLATE "C" NOT NULL,
    creator_request_id TEXT   NOT NULL DEFAULT '',
    current_version    TEXT   NOT NULL,
    creation_ms        BIGINT NOT NULL,
    deletion_ms        BIGINT,
    last_execution_ms  BIGINT,
    PRIMARY KEY (account_id, region, id)
);
CREATE INDEX backup_plans_name ON backup_plans (account_id, region, name, id);
CREATE INDEX backup_plans_creator ON backup_plans (account_id, region, creator_request_id);

CREATE TABLE backup_plan_versions (
    account_id    TEXT   NOT NULL,
    region        TEXT   NOT NULL,
    plan_id       TEXT   COLLATE "C" NOT NULL,
    version_id    TEXT   COLLATE "C" NOT NULL,
    creation_ms   BIGINT NOT NULL,
    document_json TEXT   NOT NULL,
    PRIMARY KEY (account_id, region, plan_id, version_id),
    FOREIGN KEY (account_id, region, plan_id) REFERENCES backup_plans (account_id, region, id)
);
CREATE INDEX backup_plan_versions_page ON backup_plan_versions (account_id, region, plan_id, creation_ms DESC, version_id);

-- Selections belong to a plan (not to a version); names are unique in it.
CREATE TABLE backup_selections (
    account_id         TEXT   NOT NULL,
    region             TEXT   NOT NULL,
    plan_id            TEXT   COLLATE "C" NOT NULL,
    id                 TEXT   COLLATE "C" NOT NULL,
    name               TEXT   NOT NULL,
    iam_role_arn       TEXT   NOT NULL,
    creator_request_id TEXT   NOT NULL DEFAULT '',
    creation_ms        BIGINT NOT NULL,
    document_json      TEXT   NOT NULL,
    PRIMARY KEY (account_id, region, plan_id, id),
    UNIQUE (account_id, region, plan_id, name),
    FOREIGN KEY (account_id, region, plan_id) REFERENCES backup_plans (account_id, region, id)
);
CREATE INDEX backup_selections_page ON backup_selections (account_id, region, plan_id, creation_ms, id);

-- One row per scheduled instant of a rule that some scheduler claimed. The
-- primary key makes the claim exclusive across restarts and across the
-- nodes sharing this database.
CREATE TABLE schedule_occurrences (
    rule_id         TEXT   COLLATE "C" NOT NULL,
    instant_ms      BIGINT NOT NULL,
    account_id      TEXT   NOT NULL,
    region          TEXT   NOT NULL,
    plan_id         TEXT   NOT NULL,
    version_id      TEXT   NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('CLAIMED','DONE')),
    owner           TEXT   NOT NULL,
    lease_expiry_ms BIGINT NOT NULL,
    jobs            BIGINT NOT NULL DEFAULT 0,
    done_ms         BIGINT,
    PRIMARY KEY (rule_id, instant_ms)
);
CREATE INDEX schedule_occurrences_stale ON schedule_occurrences (state, lease_expiry_ms);

-- A job started by the scheduler carries its occurrence's key; the unique
-- index makes a second job for the same (rule, instant, resource) or
-- (backup job, copy destination) impossible.
ALTER TABLE jobs ADD COLUMN schedule_key TEXT;
CREATE UNIQUE INDEX jobs_schedule_key ON jobs (schedule_key) WHERE schedule_key IS NOT NULL;

-- Recovery points keep their RecoveryPointCreator and its plan id (the
-- ByBackupPlanId filter).
ALTER TABLE recovery_points ADD COLUMN created_by_json TEXT NOT NULL DEFAULT '';
ALTER TABLE recovery_points ADD COLUMN backup_plan_id TEXT NOT NULL DEFAULT '';
CREATE INDEX recovery_points_plan ON recovery_points (account_id, region, backup_plan_id, creation_ms DESC, arn) WHERE backup_plan_id <> '';

CREATE TABLE legal_holds (
    account_id         TEXT   NOT NULL,
    region             TEXT   NOT NULL,
    id                 TEXT   COLLATE "C" NOT NULL,
    arn                TEXT   NOT NULL UNIQUE,
    title              TEXT   NOT NULL,
    description        TEXT   NOT NULL,
    status             TEXT   NOT NULL,
    cancel_description TEXT   NOT NULL DEFAULT '',
    creation_ms        BIGINT NOT NULL,
    cancellation_ms    BIGINT,
    retain_until_ms    BIGINT,
    selection_json     TEXT   NOT NULL,
    idempotency_token  TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, region, id)
);
CREATE INDEX legal_holds_page ON legal_holds (account_id, region, creation_ms DESC, id);

-- The recovery points a hold was placed on (fixed when it is created).
CREATE TABLE legal_hold_recovery_points (
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    hold_id    TEXT COLLATE "C" NOT NULL,
    rp_arn     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, region, hold_id, rp_arn)
);
CREATE INDEX legal_hold_recovery_points_rp ON legal_hold_recovery_points (rp_arn, hold_id);

CREATE TABLE region_settings (
    account_id      TEXT NOT NULL,
    region          TEXT NOT NULL,
    opt_in_json     TEXT NOT NULL DEFAULT '{}',
    management_json TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (account_id, region)
);

CREATE TABLE global_settings (
    account_id  TEXT   NOT NULL PRIMARY KEY,
    values_json TEXT   NOT NULL DEFAULT '{}',
    updated_ms  BIGINT
);
