-- Coffer metadata schema, version 3: restore jobs.
-- Protected resources remember their latest restore (AWS
-- LatestRestore* fields of DescribeProtectedResource).
ALTER TABLE protected_resources ADD COLUMN latest_restore_exec_minutes INTEGER;
ALTER TABLE protected_resources ADD COLUMN latest_restore_job_creation_ms INTEGER;
ALTER TABLE protected_resources ADD COLUMN latest_restore_rp_creation_ms INTEGER;

-- A restore job remembers its recovery point's creation date, so that
-- ListRestoreJobsByProtectedResource can filter on it and Describe can show
-- it after the recovery point is gone.
ALTER TABLE jobs ADD COLUMN rp_creation_ms INTEGER;
CREATE INDEX jobs_restore_by_resource ON jobs (kind, account_id, region, resource_arn, rp_creation_ms);
