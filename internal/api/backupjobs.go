package api

import (
	"context"
	"encoding/json"
	"time"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// LifecycleInput is the wire Lifecycle.
type LifecycleInput struct {
	MoveToColdStorageAfterDays          *int64  `json:",omitempty"`
	DeleteAfterDays                     *int64  `json:",omitempty"`
	OptInToArchiveForSupportedResources *bool   `json:",omitempty"`
	DeleteAfterEvent                    *string `json:",omitempty"`
}

func (l *LifecycleInput) toDomain(member string) (backup.Lifecycle, error) {
	if l == nil {
		return backup.Lifecycle{}, nil
	}
	if l.DeleteAfterEvent != nil {
		return backup.Lifecycle{}, invalidParam(member+".DeleteAfterEvent", "DeleteAfterEvent cannot be set on input")
	}
	lc := backup.Lifecycle{MoveToColdStorageAfterDays: l.MoveToColdStorageAfterDays, DeleteAfterDays: l.DeleteAfterDays,
		OptInToArchiveForSupportedResources: l.OptInToArchiveForSupportedResources}
	return lc, lc.Validate(member)
}

func lifecycleOut(l backup.Lifecycle) *LifecycleInput {
	if l.MoveToColdStorageAfterDays == nil && l.DeleteAfterDays == nil && l.OptInToArchiveForSupportedResources == nil {
		return nil
	}
	return &LifecycleInput{MoveToColdStorageAfterDays: l.MoveToColdStorageAfterDays, DeleteAfterDays: l.DeleteAfterDays,
		OptInToArchiveForSupportedResources: l.OptInToArchiveForSupportedResources}
}

// StartBackupJobInput is the validated input of StartBackupJob.
type StartBackupJobInput struct {
	BackupVaultName                  string
	LogicallyAirGappedBackupVaultArn *string
	ResourceArn                      string
	IamRoleArn                       string
	IdempotencyToken                 *string
	StartWindowMinutes               *int64
	CompleteWindowMinutes            *int64
	Lifecycle                        *LifecycleInput
	RecoveryPointTags                map[string]string
	BackupOptions                    map[string]string
	Index                            *string
}

// StartBackupJobOutput is its output.
type StartBackupJobOutput struct {
	BackupJobId      string
	RecoveryPointArn string     `json:",omitempty"`
	CreationDate     *Timestamp `json:",omitempty"`
	IsParent         bool
}

func (s *Server) startBackupJob(ctx context.Context, id Identity, in *StartBackupJobInput) (*StartBackupJobOutput, error) {
	if in.LogicallyAirGappedBackupVaultArn != nil {
		return nil, invalidParam("LogicallyAirGappedBackupVaultArn", "Coffer has no logically air-gapped vaults")
	}
	lc, err := in.Lifecycle.toDomain("Lifecycle")
	if err != nil {
		return nil, err
	}
	j, err := s.svc.StartBackup(ctx, id.caller(), service.StartBackupRequest{VaultName: in.BackupVaultName, ResourceArn: in.ResourceArn,
		IamRoleArn: in.IamRoleArn, IdempotencyToken: str(in.IdempotencyToken), StartWindowMinutes: in.StartWindowMinutes,
		CompleteWindowMinutes: in.CompleteWindowMinutes, Lifecycle: lc, RecoveryPointTags: in.RecoveryPointTags,
		BackupOptions: in.BackupOptions, Index: in.Index != nil && *in.Index == "ENABLED"})
	if err != nil {
		return nil, err
	}
	return &StartBackupJobOutput{BackupJobId: j.ID, RecoveryPointArn: j.RecoveryPointArn, CreationDate: ts(j.CreationDate)}, nil
}

// BackupJobOutput is the wire BackupJob (DescribeBackupJob adds the child
// counters).
type BackupJobOutput struct {
	AccountId              string            `json:",omitempty"`
	BackupJobId            string            `json:",omitempty"`
	BackupVaultName        string            `json:",omitempty"`
	BackupVaultArn         string            `json:",omitempty"`
	VaultType              string            `json:",omitempty"`
	RecoveryPointArn       string            `json:",omitempty"`
	RecoveryPointLifecycle *LifecycleInput   `json:",omitempty"`
	EncryptionKeyArn       string            `json:",omitempty"`
	IsEncrypted            bool              `json:",omitempty"`
	ResourceArn            string            `json:",omitempty"`
	CreationDate           *Timestamp        `json:",omitempty"`
	CompletionDate         *Timestamp        `json:",omitempty"`
	State                  string            `json:",omitempty"`
	StatusMessage          string            `json:",omitempty"`
	PercentDone            string            `json:",omitempty"`
	BackupSizeInBytes      *int64            `json:",omitempty"`
	IamRoleArn             string            `json:",omitempty"`
	ExpectedCompletionDate *Timestamp        `json:",omitempty"`
	StartBy                *Timestamp        `json:",omitempty"`
	ResourceType           string            `json:",omitempty"`
	BytesTransferred       *int64            `json:",omitempty"`
	BackupOptions          map[string]string `json:",omitempty"`
	BackupType             string            `json:",omitempty"`
	ParentJobId            string            `json:",omitempty"`
	IsParent               bool
	ResourceName           string         `json:",omitempty"`
	InitiationDate         *Timestamp     `json:",omitempty"`
	MessageCategory        string         `json:",omitempty"`
	NumberOfChildJobs      *int64         `json:",omitempty"`
	ChildJobsInState       map[string]int `json:",omitempty"`
	// CreatedBy names the plan and rule of a scheduled backup.
	CreatedBy json.RawMessage `json:",omitempty"`
}

func backupJobOut(j *backup.Job) BackupJobOutput {
	size, sent := j.BackupSizeBytes, j.BytesTransferred
	o := BackupJobOutput{AccountId: j.AccountID, BackupJobId: j.ID, BackupVaultName: j.VaultName, BackupVaultArn: j.VaultArn,
		VaultType: backup.VaultTypeBackup, RecoveryPointArn: j.RecoveryPointArn, RecoveryPointLifecycle: lifecycleOut(j.Lifecycle),
		IsEncrypted: true, ResourceArn: j.ResourceArn, CreationDate: ts(j.CreationDate), CompletionDate: tsp(j.CompletionDate),
		State: string(j.State), StatusMessage: j.StatusMessage, PercentDone: j.PercentDone, BackupSizeInBytes: &size, IamRoleArn: j.IamRoleArn,
		ExpectedCompletionDate: tsp(j.ExpectedCompletionDate), StartBy: tsp(j.StartBy), ResourceType: j.ResourceType,
		BytesTransferred: &sent, BackupOptions: j.BackupOptions, BackupType: j.BackupType, ParentJobId: j.ParentJobID,
		IsParent: j.IsParent, ResourceName: j.ResourceName, InitiationDate: tsp(j.InitiationDate), MessageCategory: j.MessageCategory,
		CreatedBy: createdBy(j.CreatedByJSON)}
	if len(o.BackupOptions) == 0 {
		o.BackupOptions = nil
	}
	if o.PercentDone == "" {
		o.PercentDone = "0.0"
	}
	return o
}

// BackupJobIdInput names one backup job.
type BackupJobIdInput struct {
	BackupJobId string
}

func (s *Server) describeBackupJob(ctx context.Context, id Identity, in *BackupJobIdInput) (*BackupJobOutput, error) {
	j, err := s.svc.DescribeJob(ctx, id.caller(), backup.JobBackup, in.BackupJobId) // management: any member's job
	if err != nil {
		return nil, err
	}
	out := backupJobOut(j)
	if v, err := s.svc.JobVault(ctx, j); err == nil {
		out.EncryptionKeyArn = v.EncryptionKeyArn
		out.VaultType = v.VaultType
	}
	var zero int64
	out.NumberOfChildJobs = &zero
	return &out, nil
}

func (s *Server) stopBackupJob(ctx context.Context, id Identity, in *BackupJobIdInput) (*struct{}, error) {
	return nil, s.svc.StopBackup(ctx, id.caller(), in.BackupJobId)
}

// ListBackupJobsInput is the validated input of ListBackupJobs.
type ListBackupJobsInput struct {
	NextToken         *string
	MaxResults        *int64
	ByResourceArn     *string
	ByState           *string
	ByBackupVaultName *string
	ByCreatedBefore   *Timestamp
	ByCreatedAfter    *Timestamp
	ByResourceType    *string
	ByAccountId       *string
	ByCompleteAfter   *Timestamp
	ByCompleteBefore  *Timestamp
	ByParentJobId     *string
	ByMessageCategory *string
}

// ListBackupJobsOutput is its output.
type ListBackupJobsOutput struct {
	BackupJobs []BackupJobOutput
	NextToken  *string `json:",omitempty"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func tptr(t *Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	x := t.Time()
	return &x
}

func (s *Server) listBackupJobs(ctx context.Context, id Identity, in *ListBackupJobsInput) (*ListBackupJobsOutput, error) {
	f := service.JobFilter{Kind: backup.JobBackup, State: backup.JobState(str(in.ByState)), ResourceArn: str(in.ByResourceArn),
		ResourceType: str(in.ByResourceType), VaultName: str(in.ByBackupVaultName), ParentJobID: str(in.ByParentJobId),
		MessageCategory: str(in.ByMessageCategory), CreatedAfter: tptr(in.ByCreatedAfter), CreatedBefore: tptr(in.ByCreatedBefore),
		CompleteAfter: tptr(in.ByCompleteAfter), CompleteBefore: tptr(in.ByCompleteBefore)}
	switch f.MessageCategory {
	case "AGGREGATE_ALL", "ANY", "*":
		f.MessageCategory = ""
	}
	items, next, err := listJobPage(ctx, s, id, "ListBackupJobs", in.ByAccountId, f, in.NextToken, in.MaxResults, backupJobOut)
	if err != nil {
		return nil, err
	}
	return &ListBackupJobsOutput{BackupJobs: items, NextToken: next}, nil
}
