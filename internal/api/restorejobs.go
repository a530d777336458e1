package api

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// StartRestoreJobInput is the validated input of StartRestoreJob.
type StartRestoreJobInput struct {
	RecoveryPointArn                 string
	Metadata                         map[string]string
	IamRoleArn                       *string
	IdempotencyToken                 *string
	ResourceType                     *string
	CopySourceTagsToRestoredResource *bool
}

// StartRestoreJobOutput is its output.
type StartRestoreJobOutput struct {
	RestoreJobId string
}

func optStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func optTime(t *Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	x := t.Time()
	return &x
}

func (s *Server) startRestoreJob(ctx context.Context, id Identity, in *StartRestoreJobInput) (*StartRestoreJobOutput, error) {
	if in.Metadata == nil {
		return nil, missingParam("Metadata")
	}
	req := service.StartRestoreRequest{RecoveryPointArn: in.RecoveryPointArn, Metadata: in.Metadata, IamRoleArn: optStr(in.IamRoleArn),
		IdempotencyToken: optStr(in.IdempotencyToken), ResourceType: optStr(in.ResourceType)}
	if in.CopySourceTagsToRestoredResource != nil {
		req.CopySourceTags = *in.CopySourceTagsToRestoredResource
	}
	j, err := s.svc.StartRestore(ctx, id.caller(), req)
	if err != nil {
		return nil, err
	}
	return &StartRestoreJobOutput{RestoreJobId: j.ID}, nil
}

// RestoreJobCreator is the RestoreJobCreator shape.
type RestoreJobCreator struct {
	RestoreTestingPlanArn string `json:",omitempty"`
}

// RestoreJobOutput is DescribeRestoreJobOutput and RestoreJobsListMember.
type RestoreJobOutput struct {
	AccountId                     string             `json:",omitempty"`
	RestoreJobId                  string             `json:",omitempty"`
	RecoveryPointArn              string             `json:",omitempty"`
	SourceResourceArn             string             `json:",omitempty"`
	BackupVaultArn                string             `json:",omitempty"`
	CreationDate                  *Timestamp         `json:",omitempty"`
	CompletionDate                *Timestamp         `json:",omitempty"`
	Status                        string             `json:",omitempty"`
	StatusMessage                 string             `json:",omitempty"`
	PercentDone                   string             `json:",omitempty"`
	BackupSizeInBytes             *int64             `json:",omitempty"`
	IamRoleArn                    string             `json:",omitempty"`
	ExpectedCompletionTimeMinutes *int64             `json:",omitempty"`
	CreatedResourceArn            string             `json:",omitempty"`
	ResourceType                  string             `json:",omitempty"`
	RecoveryPointCreationDate     *Timestamp         `json:",omitempty"`
	CreatedBy                     *RestoreJobCreator `json:",omitempty"`
	IsParent                      bool               `json:",omitempty"`
	ParentJobId                   string             `json:",omitempty"`
}

func (s *Server) restoreJobOut(ctx context.Context, j *backup.Job) (RestoreJobOutput, error) {
	size := j.BackupSizeBytes
	o := RestoreJobOutput{AccountId: j.AccountID, RestoreJobId: j.ID, RecoveryPointArn: j.RecoveryPointArn,
		SourceResourceArn: j.ResourceArn, BackupVaultArn: j.VaultArn, CreationDate: ts(j.CreationDate),
		CompletionDate: tsp(j.CompletionDate), Status: string(j.State), StatusMessage: j.StatusMessage, PercentDone: j.PercentDone,
		BackupSizeInBytes: &size, IamRoleArn: j.IamRoleArn, ResourceType: j.ResourceType, IsParent: j.IsParent, ParentJobId: j.ParentJobID}
	if j.State == backup.JobCompleted {
		o.CreatedResourceArn = j.CreatedResourceArn
	}
	if o.PercentDone == "" {
		o.PercentDone = "0.0"
	}
	if j.CreatedByJSON != "" {
		var c RestoreJobCreator
		if json.Unmarshal([]byte(j.CreatedByJSON), &c) == nil && c.RestoreTestingPlanArn != "" {
			o.CreatedBy = &c
		}
	}
	if (j.State == backup.JobPending || j.State == backup.JobRunning) && j.ExpectedCompletionDate != nil {
		m := int64(math.Ceil(j.ExpectedCompletionDate.Sub(s.deps.Clock.Now()).Minutes()))
		if m < 0 {
			m = 0
		}
		o.ExpectedCompletionTimeMinutes = &m
	}
	x, err := s.svc.RestoreJobInfo(ctx, j)
	if err != nil {
		return o, err
	}
	if !x.RecoveryPointCreationDate.IsZero() {
		o.RecoveryPointCreationDate = ts(x.RecoveryPointCreationDate)
	}
	return o, nil
}

// RestoreJobIdInput is the input of the operations naming a restore job.
type RestoreJobIdInput struct {
	RestoreJobId string
}

func restoreJobNotFound(id string) error {
	return &Error{Status: 400, Code: excNotFound, Context: id, Message: "Restore job " + id + " does not exist"}
}

func (s *Server) describeRestoreJob(ctx context.Context, id Identity, in *RestoreJobIdInput) (*RestoreJobOutput, error) {
	j, err := s.svc.DescribeJob(ctx, id.caller(), backup.JobRestore, in.RestoreJobId) // management: any member's job
	if backup.IsCode(err, backup.CodeNotFound) {
		err = restoreJobNotFound(in.RestoreJobId)
	}
	if err != nil {
		return nil, err
	}
	out, err := s.restoreJobOut(ctx, j)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListRestoreJobsInput is the validated input of ListRestoreJobs.
type ListRestoreJobsInput struct {
	NextToken               *string
	MaxResults              *int64
	ByAccountId             *string
	ByResourceType          *string
	ByCreatedBefore         *Timestamp
	ByCreatedAfter          *Timestamp
	ByStatus                *string
	ByCompleteBefore        *Timestamp
	ByCompleteAfter         *Timestamp
	ByRestoreTestingPlanArn *string
	ByParentJobId           *string
}

// ListRestoreJobsOutput is the output of both restore-job lists.
type ListRestoreJobsOutput struct {
	RestoreJobs []RestoreJobOutput
	NextToken   *string `json:",omitempty"`
}

func (s *Server) listRestoreJobs(ctx context.Context, id Identity, in *ListRestoreJobsInput) (*ListRestoreJobsOutput, error) {
	f := service.JobFilter{Kind: backup.JobRestore, State: backup.JobState(optStr(in.ByStatus)), ResourceType: optStr(in.ByResourceType),
		ParentJobID: optStr(in.ByParentJobId), CreatedAfter: optTime(in.ByCreatedAfter), CreatedBefore: optTime(in.ByCreatedBefore),
		CompleteAfter: optTime(in.ByCompleteAfter), CompleteBefore: optTime(in.ByCompleteBefore)}
	filter := struct {
		F    service.JobFilter
		Acct string
		Plan string
	}{f, optStr(in.ByAccountId), optStr(in.ByRestoreTestingPlanArn)}
	pg, err := s.pager.page(id.AccountID, "ListRestoreJobs", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListRestoreJobsOutput{RestoreJobs: []RestoreJobOutput{}}
	if in.ByRestoreTestingPlanArn != nil {
		if !strings.HasPrefix(*in.ByRestoreTestingPlanArn, "arn:") {
			return nil, invalidParam("ByRestoreTestingPlanArn", "ByRestoreTestingPlanArn must be a restore testing plan ARN")
		}
		// Coffer has no restore testing plans: no job was started by one.
		return out, nil
	}
	js, next, err := s.svc.ListJobs(ctx, id.caller(), in.ByAccountId, f, pg)
	if err != nil {
		return nil, err
	}
	for _, j := range js {
		o, err := s.restoreJobOut(ctx, j)
		if err != nil {
			return nil, err
		}
		out.RestoreJobs = append(out.RestoreJobs, o)
	}
	out.NextToken = s.pager.issue(id.AccountID, "ListRestoreJobs", filter, next)
	return out, nil
}

// ListRestoreJobsByProtectedResourceInput is the validated input of
// ListRestoreJobsByProtectedResource.
type ListRestoreJobsByProtectedResourceInput struct {
	ResourceArn                       string
	ByStatus                          *string
	ByRecoveryPointCreationDateAfter  *Timestamp
	ByRecoveryPointCreationDateBefore *Timestamp
	NextToken                         *string
	MaxResults                        *int64
}

func (s *Server) listRestoreJobsByProtectedResource(ctx context.Context, id Identity, in *ListRestoreJobsByProtectedResourceInput) (*ListRestoreJobsOutput, error) {
	q := service.RestoreJobQuery{ResourceArn: in.ResourceArn, State: backup.JobState(optStr(in.ByStatus)),
		RPCreatedAfter: optTime(in.ByRecoveryPointCreationDateAfter), RPCreatedBefore: optTime(in.ByRecoveryPointCreationDateBefore)}
	pg, err := s.pager.page(id.AccountID, "ListRestoreJobsByProtectedResource", q, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListRestoreJobsOutput{RestoreJobs: []RestoreJobOutput{}}
	js, next, err := s.svc.ListRestoreJobsByResource(ctx, id.caller(), q, pg)
	if err != nil {
		return nil, err
	}
	for _, j := range js {
		o, err := s.restoreJobOut(ctx, j)
		if err != nil {
			return nil, err
		}
		out.RestoreJobs = append(out.RestoreJobs, o)
	}
	out.NextToken = s.pager.issue(id.AccountID, "ListRestoreJobsByProtectedResource", q, next)
	return out, nil
}

// GetRestoreJobMetadataOutput is the output of GetRestoreJobMetadata.
type GetRestoreJobMetadataOutput struct {
	RestoreJobId string
	Metadata     map[string]string
}

func (s *Server) getRestoreJobMetadata(ctx context.Context, id Identity, in *RestoreJobIdInput) (*GetRestoreJobMetadataOutput, error) {
	md, err := s.svc.RestoreJobMetadata(ctx, id.caller(), in.RestoreJobId)
	if backup.IsCode(err, backup.CodeNotFound) {
		err = restoreJobNotFound(in.RestoreJobId)
	}
	if err != nil {
		return nil, err
	}
	return &GetRestoreJobMetadataOutput{RestoreJobId: in.RestoreJobId, Metadata: md}, nil
}

// GetRecoveryPointRestoreMetadataInput is the validated input of
// GetRecoveryPointRestoreMetadata.
type GetRecoveryPointRestoreMetadataInput struct {
	BackupVaultName      string
	RecoveryPointArn     string
	BackupVaultAccountId *string
}

// GetRecoveryPointRestoreMetadataOutput is its output.
type GetRecoveryPointRestoreMetadataOutput struct {
	BackupVaultArn   string
	RecoveryPointArn string
	RestoreMetadata  map[string]string
	ResourceType     string
}

func (s *Server) getRecoveryPointRestoreMetadata(ctx context.Context, id Identity, in *GetRecoveryPointRestoreMetadataInput) (*GetRecoveryPointRestoreMetadataOutput, error) {
	if in.BackupVaultAccountId != nil && *in.BackupVaultAccountId != id.AccountID {
		// Coffer does not share vaults across accounts.
		return nil, &Error{Status: 400, Code: excNotFound, Context: in.RecoveryPointArn,
			Message: "Recovery point " + in.RecoveryPointArn + " does not exist in backup vault " + in.BackupVaultName}
	}
	v, rp, md, err := s.svc.RecoveryPointRestoreMetadata(ctx, id.caller(), in.BackupVaultName, in.RecoveryPointArn)
	if err != nil {
		return nil, err
	}
	return &GetRecoveryPointRestoreMetadataOutput{BackupVaultArn: v.Arn, RecoveryPointArn: rp.Arn, RestoreMetadata: md, ResourceType: rp.ResourceType}, nil
}
