package sqlrow

import (
	"encoding/json"
	"fmt"

	"coffer/internal/backup"
)

// ---- vaults ----

// VaultCols are the columns of a vault, in the order of VaultArgs and
// ScanVault.
const VaultCols = `account_id, region, name, arn, vault_type, vault_state, creation_ms, creator_request_id,
	encryption_key_arn, locked, lock_min_days, lock_max_days, lock_date_ms, access_policy`

// VaultArgs are the values of v's VaultCols.
func VaultArgs(v *backup.Vault) []any {
	return []any{v.AccountID, v.Region, v.Name, v.Arn, v.VaultType, v.VaultState, Ms(v.CreationDate), v.CreatorRequestID,
		v.EncryptionKeyArn, v.Locked, v.MinRetentionDays, v.MaxRetentionDays, NullMs(v.LockDate), v.AccessPolicy}
}

// ScanVault reads a row of VaultCols.
func ScanVault(sc Scanner) (*backup.Vault, error) {
	var v backup.Vault
	var created int64
	var locked any
	var lockDate *int64
	if err := sc.Scan(&v.AccountID, &v.Region, &v.Name, &v.Arn, &v.VaultType, &v.VaultState, &created,
		&v.CreatorRequestID, &v.EncryptionKeyArn, &locked, &v.MinRetentionDays, &v.MaxRetentionDays, &lockDate, &v.AccessPolicy); err != nil {
		return nil, err
	}
	v.CreationDate = UTC(created)
	v.Locked = flag(locked)
	v.LockDate = Time(lockDate)
	return &v, nil
}

// ---- recovery points ----

// RPCols are the columns of a recovery point, in the order of RPArgs and
// ScanRP. The first, arn, is the key.
const RPCols = `arn, account_id, region, vault_name, vault_arn, source_vault_arn, resource_arn, resource_type, resource_name,
	iam_role_arn, status, status_message, storage_class, backup_size_bytes, lc_cold_after_days, lc_delete_after_days,
	lc_opt_in_archive, cold_at_ms, delete_at_ms, creation_ms, initiation_ms, completion_ms, last_restore_ms,
	encryption_key_arn, manifest_id, backup_job_id, tags_json, created_by_json, backup_plan_id`

// RPColList is RPCols split into names.
var RPColList = SplitCols(RPCols)

// RPArgs are the values of r's RPCols.
func RPArgs(r *backup.RecoveryPoint) ([]any, error) {
	tags := r.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	tj, err := json.Marshal(tags)
	if err != nil {
		return nil, err
	}
	return []any{r.Arn, r.AccountID, r.Region, r.VaultName, r.VaultArn, r.SourceVaultArn, r.ResourceArn, r.ResourceType,
		r.ResourceName, r.IamRoleArn, string(r.Status), r.StatusMessage, r.StorageClass, r.BackupSizeBytes,
		r.Lifecycle.MoveToColdStorageAfterDays, r.Lifecycle.DeleteAfterDays, r.Lifecycle.OptInToArchiveForSupportedResources,
		NullMs(r.MoveToColdStorageAt), NullMs(r.DeleteAt), Ms(r.CreationDate), NullMs(r.InitiationDate), NullMs(r.CompletionDate),
		NullMs(r.LastRestoreTime), r.EncryptionKeyArn, r.ManifestID, r.BackupJobID, string(tj), r.CreatedByJSON,
		creatorPlanID(r.CreatedByJSON)}, nil
}

// creatorPlanID is the BackupPlanId of a RecoveryPointCreator ("" when
// none), kept in its own column for the ByBackupPlanId filter.
func creatorPlanID(createdBy string) string {
	c, _ := backup.ParseCreator(createdBy)
	return c.BackupPlanId
}

// ScanRP reads a row of RPCols.
func ScanRP(sc Scanner) (*backup.RecoveryPoint, error) {
	var r backup.RecoveryPoint
	var coldAt, delAt, init, comp, lastRestore *int64
	var optIn any
	var created int64
	var tagsJSON string
	if err := sc.Scan(&r.Arn, &r.AccountID, &r.Region, &r.VaultName, &r.VaultArn, &r.SourceVaultArn, &r.ResourceArn,
		&r.ResourceType, &r.ResourceName, &r.IamRoleArn, &r.Status, &r.StatusMessage, &r.StorageClass, &r.BackupSizeBytes,
		&r.Lifecycle.MoveToColdStorageAfterDays, &r.Lifecycle.DeleteAfterDays, &optIn,
		&coldAt, &delAt, &created, &init, &comp, &lastRestore, &r.EncryptionKeyArn, &r.ManifestID,
		&r.BackupJobID, &tagsJSON, &r.CreatedByJSON, new(string)); err != nil {
		return nil, err
	}
	r.Lifecycle.OptInToArchiveForSupportedResources = nullFlag(optIn)
	r.MoveToColdStorageAt, r.DeleteAt = Time(coldAt), Time(delAt)
	r.CreationDate = UTC(created)
	r.InitiationDate, r.CompletionDate, r.LastRestoreTime = Time(init), Time(comp), Time(lastRestore)
	if err := json.Unmarshal([]byte(tagsJSON), &r.Tags); err != nil {
		return nil, fmt.Errorf("recovery point %s: tags: %w", r.Arn, err)
	}
	return &r, nil
}

// ---- protected resources ----

// PRCols are the columns of a protected resource, in the order of PRArgs
// and ScanPR.
const PRCols = `account_id, region, resource_arn, resource_type, resource_name, last_backup_ms, last_backup_vault_arn, last_recovery_point_arn`

// PRArgs are the values of r's PRCols.
func PRArgs(r *backup.ProtectedResource) []any {
	return []any{r.AccountID, r.Region, r.ResourceArn, r.ResourceType, r.ResourceName, NullMs(r.LastBackupTime),
		r.LastBackupVaultArn, r.LastRecoveryPointArn}
}

// ScanPR reads a row of PRCols.
func ScanPR(sc Scanner) (*backup.ProtectedResource, error) {
	var r backup.ProtectedResource
	var last *int64
	if err := sc.Scan(&r.AccountID, &r.Region, &r.ResourceArn, &r.ResourceType, &r.ResourceName, &last,
		&r.LastBackupVaultArn, &r.LastRecoveryPointArn); err != nil {
		return nil, err
	}
	r.LastBackupTime = Time(last)
	return &r, nil
}

// ScanVaultResource reads a row of the latest recovery point of a resource
// in a vault (resource_arn, resource_type, resource_name, creation_ms,
// vault_arn, arn) as the protected resource of account and region.
func ScanVaultResource(account, region string) func(Scanner) (*backup.ProtectedResource, error) {
	return func(sc Scanner) (*backup.ProtectedResource, error) {
		r := backup.ProtectedResource{AccountID: account, Region: region}
		var created int64
		if err := sc.Scan(&r.ResourceArn, &r.ResourceType, &r.ResourceName, &created, &r.LastBackupVaultArn, &r.LastRecoveryPointArn); err != nil {
			return nil, err
		}
		c := UTC(created)
		r.LastBackupTime = &c
		return &r, nil
	}
}

// ---- resources ----

// ResourceCols are the columns of a resource, in the order of
// ResourceArgs and ScanResource.
const ResourceCols = `account_id, region, type, id, arn, name, tags_json, attrs_json, creation_ms, created_by_restore_job`

// ResourceArgs are the values of r's ResourceCols.
func ResourceArgs(r *backup.Resource) ([]any, error) {
	tj, err := JSONMap(r.Tags)
	if err != nil {
		return nil, err
	}
	aj, err := JSONMap(r.Attrs)
	if err != nil {
		return nil, err
	}
	return []any{r.AccountID, r.Region, r.Type, r.ID, r.Arn, r.Name, tj, aj, Ms(r.CreationDate), r.CreatedByRestoreJob}, nil
}

// ScanResource reads a row of ResourceCols.
func ScanResource(sc Scanner) (*backup.Resource, error) {
	var r backup.Resource
	var tj, aj string
	var created int64
	if err := sc.Scan(&r.AccountID, &r.Region, &r.Type, &r.ID, &r.Arn, &r.Name, &tj, &aj, &created, &r.CreatedByRestoreJob); err != nil {
		return nil, err
	}
	r.CreationDate = UTC(created)
	if err := json.Unmarshal([]byte(tj), &r.Tags); err != nil {
		return nil, fmt.Errorf("resource %s: tags: %w", r.Arn, err)
	}
	if err := json.Unmarshal([]byte(aj), &r.Attrs); err != nil {
		return nil, fmt.Errorf("resource %s: attributes: %w", r.Arn, err)
	}
	return &r, nil
}

// RPCursor is the cursor of recovery point lists (newest first by
// creation, ARN).
func RPCursor(r *backup.RecoveryPoint) string { return TimeCursor(r.CreationDate, r.Arn) }
