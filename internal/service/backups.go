package service

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/backupjob"
	"coffer/internal/jobs"
	"coffer/internal/store"
)

// Backup windows (minutes).
const (
	DefaultStartWindowMinutes    = 480
	MinStartWindowMinutes        = 60
	DefaultCompleteWindowMinutes = 10080
	MaxWindowMinutes             = 52_560_000
)

// StartBackupRequest starts a backup of one resource into a vault.
type StartBackupRequest struct {
	VaultName             string
	ResourceArn           string
	IamRoleArn            string
	IdempotencyToken      string
	StartWindowMinutes    *int64 // nil: DefaultStartWindowMinutes
	CompleteWindowMinutes *int64 // nil: DefaultCompleteWindowMinutes
	Lifecycle             backup.Lifecycle
	RecoveryPointTags     map[string]string
	BackupOptions         map[string]string // type-specific, checked by the resource's plugin
	// Index asks for a backup index (AWS Index ENABLED); no type supports
	// it yet.
	Index bool
	// CreatedBy is the RecoveryPointCreator (JSON) of a scheduled backup;
	// "" for an on-demand one.
	CreatedBy string
	// ScheduledAt is the instant a scheduled backup was due: its start
	// window counts from it (zero: from the job's creation). A job whose
	// window has already closed is created EXPIRED.
	ScheduledAt time.Time
	// ScheduleKey makes the job unique: a request with a key that already
	// started a job returns that job (the scheduler's exactly-once).
	ScheduleKey string
}

// StartBackup validates req and creates the backup job (CREATED), or
// returns the job an earlier request with the same idempotency token
// created.
func (s *Service) StartBackup(ctx context.Context, c Caller, req StartBackupRequest) (*backup.Job, error) {
	if !backup.ValidIAMRoleArn(req.IamRoleArn) {
		return nil, backup.InvalidParam("IamRoleArn", "IamRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), not %q", backup.Truncate(req.IamRoleArn, 300))
	}
	startWin := int64(DefaultStartWindowMinutes)
	if req.StartWindowMinutes != nil {
		startWin = *req.StartWindowMinutes
		if startWin < MinStartWindowMinutes || startWin > MaxWindowMinutes {
			return nil, backup.InvalidParam("StartWindowMinutes", "StartWindowMinutes must be between %d and %d", MinStartWindowMinutes, MaxWindowMinutes)
		}
	}
	completeWin := int64(DefaultCompleteWindowMinutes)
	if req.CompleteWindowMinutes != nil {
		completeWin = *req.CompleteWindowMinutes
		if completeWin < 1 || completeWin > MaxWindowMinutes {
			return nil, backup.InvalidParam("CompleteWindowMinutes", "CompleteWindowMinutes must be between 1 and %d", MaxWindowMinutes)
		}
	}
	if err := req.Lifecycle.Validate("Lifecycle"); err != nil {
		return nil, err
	}
	if err := backup.ValidateTags("Tags", req.RecoveryPointTags); err != nil {
		return nil, err
	}
	plugin, _, ok := s.plugins.ForARN(req.ResourceArn)
	if !ok {
		return nil, backup.InvalidParam("ResourceArn", "Unsupported resource type: %s", backup.Truncate(req.ResourceArn, 300))
	}
	if err := plugin.CheckBackupOptions(req.BackupOptions); err != nil {
		return nil, err
	}
	if req.Index {
		return nil, backup.InvalidParam("Index", "Indexing is not supported for resource type %s", plugin.Type())
	}
	dreq := req
	dreq.IdempotencyToken = ""
	params, err := json.Marshal(backupjob.Params{StartWindowMinutes: startWin, CompleteWindowMinutes: completeWin, RecoveryPointTags: req.RecoveryPointTags})
	if err != nil {
		return nil, err
	}
	now := s.clk.Now()
	sc := c.Scope()
	return s.createJob(ctx, sc, idempotentRequest{op: OpStartBackup, token: req.IdempotencyToken, params: dreq, kind: backup.JobBackup,
		scheduleKey: req.ScheduleKey}, now,
		func(tx store.Tx) (*backup.Job, error) {
			v, err := tx.GetVault(ctx, sc, req.VaultName)
			if err != nil {
				return nil, err
			}
			p, r, err := s.resolveResource(ctx, tx, c, "ResourceArn", req.ResourceArn)
			if err != nil {
				return nil, err
			}
			from := now
			if !req.ScheduledAt.IsZero() {
				from = req.ScheduledAt
			}
			startBy := from.Add(time.Duration(startWin) * time.Minute)
			j := &backup.Job{Kind: backup.JobBackup, ID: backup.NewJobID(), AccountID: c.AccountID, Region: c.Region, State: backup.JobCreated,
				CreationDate: now, StartBy: &startBy, VaultName: v.Name, VaultArn: v.Arn,
				RecoveryPointArn: backup.RecoveryPointArn(c.Region, c.AccountID, strings.ToLower(backup.NewRecoveryPointID())),
				ResourceArn:      r.Arn, ResourceType: p.Type(), ResourceName: r.Name, IamRoleArn: req.IamRoleArn,
				Lifecycle: req.Lifecycle, BackupOptions: req.BackupOptions, IdempotencyToken: req.IdempotencyToken,
				CreatedByJSON: req.CreatedBy, ParametersJSON: string(params), ScheduleKey: req.ScheduleKey}
			if !startBy.After(now) {
				jobs.ExpireUnstarted(j, now)
			}
			return j, nil
		})
}

// StopBackup asks a backup job to stop: a queued one becomes ABORTED at
// once, a running one ABORTING (its runner then stops it). A finished job
// is InvalidRequest.
func (s *Service) StopBackup(ctx context.Context, c Caller, jobID string) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		j, err := tx.GetJob(ctx, c.Scope(), backup.JobBackup, jobID)
		if err != nil {
			return err
		}
		return jobs.Stop(ctx, tx, j, s.clk.Now())
	})
}
