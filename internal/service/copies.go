package service

import (
	"context"
	"encoding/json"

	"coffer/internal/backup"
	"coffer/internal/copyjob"
	"coffer/internal/store"
)

// StartCopyRequest copies a recovery point into another vault, of the same
// or (when that vault's access policy allows it) another account.
type StartCopyRequest struct {
	RecoveryPointArn    string
	SourceVaultName     string
	DestinationVaultArn string
	IamRoleArn          string
	IdempotencyToken    string
	Lifecycle           backup.Lifecycle
	// KeepSourceExpiry makes the copy expire when the source does (AWS
	// Lifecycle.DeleteAfterDays = -1); Lifecycle.DeleteAfterDays is then
	// unset.
	KeepSourceExpiry bool
	CreatedBy        string
	// ScheduleKey makes the job unique (a plan's copy action of one backup
	// job): a request with a key that already started a job returns it.
	ScheduleKey string
}

// StartCopy validates req and creates the copy job (CREATED), or returns
// the job an earlier request with the same idempotency token created.
func (s *Service) StartCopy(ctx context.Context, c Caller, req StartCopyRequest) (*backup.Job, error) {
	if !backup.ValidIAMRoleArn(req.IamRoleArn) {
		return nil, backup.InvalidParam("IamRoleArn", "IamRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), not %q", backup.Truncate(req.IamRoleArn, 300))
	}
	if err := req.Lifecycle.Validate("Lifecycle"); err != nil {
		return nil, err
	}
	dRegion, dAcct, dName, ok := backup.ParseVaultArn(req.DestinationVaultArn)
	if !ok {
		return nil, backup.InvalidParam("DestinationBackupVaultArn", "DestinationBackupVaultArn must be a backup vault ARN, not %q", backup.Truncate(req.DestinationVaultArn, 300))
	}
	if dRegion != c.Region {
		return nil, backup.InvalidParam("DestinationBackupVaultArn", "Cross-region copies are not supported: this server serves region %s", c.Region)
	}
	if rRegion, rAcct, ok := backup.RecoveryPointArnScope(req.RecoveryPointArn); !ok {
		return nil, backup.InvalidParam("RecoveryPointArn", "RecoveryPointArn must be a recovery point ARN, not %q", backup.Truncate(req.RecoveryPointArn, 300))
	} else if rAcct != c.AccountID || rRegion != c.Region {
		// Another account's recovery point: denied whether or not it exists.
		return nil, &backup.Error{Code: backup.CodeAccessDenied, Message: "Access denied to recovery point " + backup.Truncate(req.RecoveryPointArn, 300)}
	}
	dreq := req
	dreq.IdempotencyToken = ""
	jobID := backup.NewJobID()
	params, err := json.Marshal(copyjob.Params{DestinationAccount: dAcct, DestinationVaultName: dName, KeepSourceExpiry: req.KeepSourceExpiry,
		DestinationRecoveryPointArn: backup.RecoveryPointArn(c.Region, dAcct, backup.NewRecoveryPointID())})
	if err != nil {
		return nil, err
	}
	now := s.clk.Now()
	sc := c.Scope()
	return s.createJob(ctx, sc, idempotentRequest{op: OpStartCopy, token: req.IdempotencyToken, params: dreq, kind: backup.JobCopy,
		scheduleKey: req.ScheduleKey}, now,
		func(tx store.Tx) (*backup.Job, error) {
			v, err := tx.GetVault(ctx, sc, req.SourceVaultName)
			if err != nil {
				return nil, err
			}
			rp, err := tx.GetRecoveryPoint(ctx, sc, req.RecoveryPointArn)
			if err != nil {
				return nil, err
			}
			if rp.VaultName != v.Name {
				return nil, backup.NotFound(req.RecoveryPointArn, "Recovery point %s does not exist in backup vault %s", backup.Truncate(req.RecoveryPointArn, 300), v.Name)
			}
			if rp.Status != backup.RecoveryPointCompleted {
				return nil, backup.Errorf(backup.CodeInvalidRequest, "Recovery point %s is %s; only COMPLETED recovery points can be copied", rp.Arn, rp.Status)
			}
			if rp.StorageClass == backup.StorageCold {
				return nil, backup.Errorf(backup.CodeInvalidRequest, "Recovery point %s is in cold storage and cannot be copied", rp.Arn)
			}
			if dAcct == c.AccountID {
				// Same account: a missing destination is the caller's own
				// mistake. Other accounts' vaults are checked by the job, so the
				// call reveals nothing about them.
				if _, err := tx.GetVault(ctx, sc, dName); err != nil {
					return nil, err
				}
			}
			return &backup.Job{Kind: backup.JobCopy, ID: jobID, AccountID: c.AccountID, Region: c.Region, State: backup.JobCreated,
				CreationDate: now, VaultName: v.Name, VaultArn: v.Arn, DestinationVaultArn: req.DestinationVaultArn,
				RecoveryPointArn: rp.Arn, ResourceArn: rp.ResourceArn, ResourceType: rp.ResourceType, ResourceName: rp.ResourceName,
				BackupSizeBytes: rp.BackupSizeBytes, IamRoleArn: req.IamRoleArn, Lifecycle: req.Lifecycle, IdempotencyToken: req.IdempotencyToken,
				CreatedByJSON: req.CreatedBy, ParametersJSON: string(params), ScheduleKey: req.ScheduleKey}, nil
		})
}

// CopyKeepsSourceExpiry reports whether copy job j's copy expires when its
// source does (StartCopyRequest.KeepSourceExpiry).
func CopyKeepsSourceExpiry(j *backup.Job) bool {
	p, err := copyjob.ParseParams(j.ParametersJSON)
	return err == nil && p.KeepSourceExpiry
}
