package sqlrow

import (
	"encoding/json"
	"fmt"

	"coffer/internal/backup"
)

// JobCols are the columns of a job, in the order of JobArgs and ScanJob.
const JobCols = `kind, id, account_id, region, state, status_message, message_category, percent_done, bytes_transferred,
	backup_size_bytes, creation_ms, completion_ms, initiation_ms, start_by_ms, expected_completion_ms, vault_name, vault_arn,
	destination_vault_arn, recovery_point_arn, destination_recovery_point_arn, resource_arn, resource_type, resource_name,
	iam_role_arn, created_resource_arn, parent_job_id, is_parent, backup_type, lc_cold_after_days, lc_delete_after_days,
	lc_opt_in_archive, backup_options_json, created_by_json, idempotency_token, lease_owner, lease_generation,
	lease_expiry_ms, heartbeat_ms, progress_percent, parameters_json, result_json, schedule_key`

// JobColList is JobCols split into names.
var JobColList = SplitCols(JobCols)

// JobFixedCols are the job columns an update leaves alone: the identity
// and the page key never change.
var JobFixedCols = []string{"kind", "id", "account_id", "region", "creation_ms"}

// JobArgs are the values of j's JobCols.
func JobArgs(j *backup.Job) ([]any, error) {
	opts := j.BackupOptions
	if opts == nil {
		opts = map[string]string{}
	}
	oj, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	params, result := j.ParametersJSON, j.ResultJSON
	if params == "" {
		params = "{}"
	}
	if result == "" {
		result = "{}"
	}
	return []any{string(j.Kind), j.ID, j.AccountID, j.Region, string(j.State), j.StatusMessage, j.MessageCategory, j.PercentDone,
		j.BytesTransferred, j.BackupSizeBytes, Ms(j.CreationDate), NullMs(j.CompletionDate), NullMs(j.InitiationDate),
		NullMs(j.StartBy), NullMs(j.ExpectedCompletionDate), j.VaultName, j.VaultArn, j.DestinationVaultArn, j.RecoveryPointArn,
		j.DestinationRecoveryPointArn, j.ResourceArn, j.ResourceType, j.ResourceName, j.IamRoleArn, j.CreatedResourceArn,
		j.ParentJobID, j.IsParent, j.BackupType, j.Lifecycle.MoveToColdStorageAfterDays, j.Lifecycle.DeleteAfterDays,
		j.Lifecycle.OptInToArchiveForSupportedResources, string(oj), j.CreatedByJSON, j.IdempotencyToken, j.LeaseOwner,
		j.LeaseGeneration, NullMs(j.LeaseExpiry), NullMs(j.Heartbeat), j.ProgressPercent, params, result, NullStr(j.ScheduleKey)}, nil
}

// ScanJob reads a row of JobCols.
func ScanJob(sc Scanner) (*backup.Job, error) {
	var j backup.Job
	var kind, state, opts string
	var created int64
	var comp, init, startBy, expected, leaseExp, hb *int64
	var isParent, optIn any
	var key *string
	if err := sc.Scan(&kind, &j.ID, &j.AccountID, &j.Region, &state, &j.StatusMessage, &j.MessageCategory, &j.PercentDone,
		&j.BytesTransferred, &j.BackupSizeBytes, &created, &comp, &init, &startBy, &expected, &j.VaultName, &j.VaultArn,
		&j.DestinationVaultArn, &j.RecoveryPointArn, &j.DestinationRecoveryPointArn, &j.ResourceArn, &j.ResourceType,
		&j.ResourceName, &j.IamRoleArn, &j.CreatedResourceArn, &j.ParentJobID, &isParent, &j.BackupType,
		&j.Lifecycle.MoveToColdStorageAfterDays, &j.Lifecycle.DeleteAfterDays, &optIn,
		&opts, &j.CreatedByJSON, &j.IdempotencyToken, &j.LeaseOwner, &j.LeaseGeneration, &leaseExp, &hb, &j.ProgressPercent,
		&j.ParametersJSON, &j.ResultJSON, &key); err != nil {
		return nil, err
	}
	j.Kind, j.State = backup.JobKind(kind), backup.JobState(state)
	if key != nil {
		j.ScheduleKey = *key
	}
	j.CreationDate = UTC(created)
	j.CompletionDate, j.InitiationDate, j.StartBy, j.ExpectedCompletionDate = Time(comp), Time(init), Time(startBy), Time(expected)
	j.IsParent = flag(isParent)
	j.Lifecycle.OptInToArchiveForSupportedResources = nullFlag(optIn)
	j.LeaseExpiry, j.Heartbeat = Time(leaseExp), Time(hb)
	if err := json.Unmarshal([]byte(opts), &j.BackupOptions); err != nil {
		return nil, fmt.Errorf("job %s: backup options: %w", j.ID, err)
	}
	return &j, nil
}

// JobCursor is the cursor of job lists (newest first by creation, id).
func JobCursor(j *backup.Job) string { return TimeCursor(j.CreationDate, j.ID) }
