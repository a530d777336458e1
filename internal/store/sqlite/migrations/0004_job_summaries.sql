-- Covering indexes for the job summaries (ListBackup/Copy/RestoreJobSummaries):
-- a window of creation times for one account or for every account, with
-- every grouped column in the index so the count never reads the table.
CREATE INDEX jobs_summary_account ON jobs (kind, account_id, region, creation_ms, state, resource_type, message_category);
CREATE INDEX jobs_summary_all     ON jobs (kind, region, creation_ms, state, resource_type, message_category, account_id);
