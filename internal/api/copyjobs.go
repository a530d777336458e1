package api

import (
	"context"
	"encoding/json"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// StartCopyJobInput is the validated input of StartCopyJob.
type StartCopyJobInput struct {
	RecoveryPointArn          string
	SourceBackupVaultName     string
	DestinationBackupVaultArn string
	IamRoleArn                string
	IdempotencyToken          *string
	Lifecycle                 *LifecycleInput
}

// StartCopyJobOutput is its output.
type StartCopyJobOutput struct {
	CopyJobId    string
	CreationDate *Timestamp `json:",omitempty"`
	IsParent     bool
}

func (s *Server) startCopyJob(ctx context.Context, id Identity, in *StartCopyJobInput) (*StartCopyJobOutput, error) {
	req := service.StartCopyRequest{RecoveryPointArn: in.RecoveryPointArn, SourceVaultName: in.SourceBackupVaultName,
		DestinationVaultArn: in.DestinationBackupVaultArn, IamRoleArn: in.IamRoleArn, IdempotencyToken: optStr(in.IdempotencyToken)}
	if in.Lifecycle != nil {
		// DeleteAfterDays = -1 keeps the source recovery point's expiry.
		l := *in.Lifecycle
		if l.DeleteAfterDays != nil && *l.DeleteAfterDays == -1 {
			req.KeepSourceExpiry = true
			l.DeleteAfterDays = nil
		}
		lc, err := l.toDomain("Lifecycle")
		if err != nil {
			return nil, err
		}
		req.Lifecycle = lc
	}
	j, err := s.svc.StartCopy(ctx, id.caller(), req)
	if err != nil {
		return nil, err
	}
	return &StartCopyJobOutput{CopyJobId: j.ID, CreationDate: ts(j.CreationDate)}, nil
}

// CopyJobOutput is the wire CopyJob.
type CopyJobOutput struct {
	AccountId                         string          `json:",omitempty"`
	CopyJobId                         string          `json:",omitempty"`
	SourceBackupVaultArn              string          `json:",omitempty"`
	SourceRecoveryPointArn            string          `json:",omitempty"`
	DestinationBackupVaultArn         string          `json:",omitempty"`
	DestinationVaultType              string          `json:",omitempty"`
	DestinationRecoveryPointArn       string          `json:",omitempty"`
	DestinationRecoveryPointLifecycle *LifecycleInput `json:",omitempty"`
	ResourceArn                       string          `json:",omitempty"`
	CreationDate                      *Timestamp      `json:",omitempty"`
	CompletionDate                    *Timestamp      `json:",omitempty"`
	State                             string          `json:",omitempty"`
	StatusMessage                     string          `json:",omitempty"`
	BackupSizeInBytes                 *int64          `json:",omitempty"`
	IamRoleArn                        string          `json:",omitempty"`
	CreatedBy                         json.RawMessage `json:",omitempty"`
	ResourceType                      string          `json:",omitempty"`
	ParentJobId                       string          `json:",omitempty"`
	IsParent                          bool
	NumberOfChildJobs                 *int64 `json:",omitempty"`
	ResourceName                      string `json:",omitempty"`
	MessageCategory                   string `json:",omitempty"`
}

func copyJobOut(j *backup.Job) CopyJobOutput {
	size := j.BackupSizeBytes
	o := CopyJobOutput{AccountId: j.AccountID, CopyJobId: j.ID, SourceBackupVaultArn: j.VaultArn, SourceRecoveryPointArn: j.RecoveryPointArn,
		DestinationBackupVaultArn: j.DestinationVaultArn, DestinationVaultType: backup.VaultTypeBackup,
		DestinationRecoveryPointArn: j.DestinationRecoveryPointArn, ResourceArn: j.ResourceArn, CreationDate: ts(j.CreationDate),
		CompletionDate: tsp(j.CompletionDate), State: string(j.State), StatusMessage: j.StatusMessage, BackupSizeInBytes: &size,
		IamRoleArn: j.IamRoleArn, ResourceType: j.ResourceType, ParentJobId: j.ParentJobID, IsParent: j.IsParent,
		ResourceName: j.ResourceName, MessageCategory: j.MessageCategory}
	lc := j.Lifecycle
	if service.CopyKeepsSourceExpiry(j) {
		keep := int64(-1)
		lc.DeleteAfterDays = &keep
	}
	o.DestinationRecoveryPointLifecycle = lifecycleOut(lc)
	if j.CreatedByJSON != "" && json.Valid([]byte(j.CreatedByJSON)) {
		o.CreatedBy = json.RawMessage(j.CreatedByJSON)
	}
	return o
}

// CopyJobIdInput names one copy job.
type CopyJobIdInput struct {
	CopyJobId string
}

// DescribeCopyJobOutput nests the job under CopyJob.
type DescribeCopyJobOutput struct {
	CopyJob CopyJobOutput
}

func (s *Server) describeCopyJob(ctx context.Context, id Identity, in *CopyJobIdInput) (*DescribeCopyJobOutput, error) {
	j, err := s.svc.DescribeJob(ctx, id.caller(), backup.JobCopy, in.CopyJobId) // management: any member's job
	if backup.IsCode(err, backup.CodeNotFound) {
		return nil, backup.NotFound(in.CopyJobId, "Copy job %s does not exist", backup.Truncate(in.CopyJobId, 100))
	}
	if err != nil {
		return nil, err
	}
	out := DescribeCopyJobOutput{CopyJob: copyJobOut(j)}
	var zero int64
	out.CopyJob.NumberOfChildJobs = &zero
	return &out, nil
}

// ListCopyJobsInput is the validated input of ListCopyJobs.
type ListCopyJobsInput struct {
	NextToken                *string
	MaxResults               *int64
	ByResourceArn            *string
	ByState                  *string
	ByCreatedBefore          *Timestamp
	ByCreatedAfter           *Timestamp
	ByResourceType           *string
	ByDestinationVaultArn    *string
	ByAccountId              *string
	ByCompleteBefore         *Timestamp
	ByCompleteAfter          *Timestamp
	ByParentJobId            *string
	ByMessageCategory        *string
	BySourceRecoveryPointArn *string
}

// ListCopyJobsOutput is its output.
type ListCopyJobsOutput struct {
	CopyJobs  []CopyJobOutput
	NextToken *string `json:",omitempty"`
}

func (s *Server) listCopyJobs(ctx context.Context, id Identity, in *ListCopyJobsInput) (*ListCopyJobsOutput, error) {
	f := service.JobFilter{Kind: backup.JobCopy, State: backup.JobState(str(in.ByState)), ResourceArn: str(in.ByResourceArn),
		ResourceType: str(in.ByResourceType), DestinationVaultArn: str(in.ByDestinationVaultArn), ParentJobID: str(in.ByParentJobId),
		MessageCategory: str(in.ByMessageCategory), SourceRecoveryPoint: str(in.BySourceRecoveryPointArn),
		CreatedAfter: tptr(in.ByCreatedAfter), CreatedBefore: tptr(in.ByCreatedBefore),
		CompleteAfter: tptr(in.ByCompleteAfter), CompleteBefore: tptr(in.ByCompleteBefore)}
	switch f.MessageCategory {
	case "AGGREGATE_ALL", "ANY", "*":
		f.MessageCategory = ""
	}
	items, next, err := listJobPage(ctx, s, id, "ListCopyJobs", in.ByAccountId, f, in.NextToken, in.MaxResults, copyJobOut)
	if err != nil {
		return nil, err
	}
	return &ListCopyJobsOutput{CopyJobs: items, NextToken: next}, nil
}
