package api

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/restorejob"
	"coffer/internal/store"
)

// RestoreStarter validates and creates restore jobs (restorejob.Service).
type RestoreStarter interface {
	Start(ctx context.Context, sc store.Scope, req restorejob.StartRequest) (string, error)
}

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
	if s.deps.Restores == nil {
		return nil, apiErr(503, excServiceUnavail, "restores are not configured on this server")
	}
	req := restorejob.StartRequest{RecoveryPointArn: in.RecoveryPointArn, Metadata: in.Metadata, IamRoleArn: optStr(in.IamRoleArn),
		IdempotencyToken: optStr(in.IdempotencyToken), ResourceType: optStr(in.ResourceType)}
	if in.CopySourceTagsToRestoredResource != nil {
		req.CopySourceTagsToRestoredResource = *in.CopySourceTagsToRestoredResource
	}
	if req.Metadata == nil {
		return nil, missingParam("Metadata")
	}
	jobID, err := s.deps.Restores.Start(ctx, id.scope(), req)
	if err != nil {
		return nil, err
	}
	return &StartRestoreJobOutput{RestoreJobId: jobID}, nil
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

func (s *Server) restoreJobOut(ctx context.Context, tx store.Tx, sc store.Scope, j *backup.Job) (RestoreJobOutput, error) {
	size := j.BackupSizeBytes
	o := RestoreJobOutput{AccountId: j.AccountID, RestoreJobId: j.ID, RecoveryPointArn: j.RecoveryPointArn,
		SourceResourceArn: j.ResourceArn, BackupVaultArn: j.VaultArn, CreationDate: ts(j.CreationDate),
		CompletionDate: tsp(j.CompletionDate), Status: j.State, StatusMessage: j.StatusMessage, PercentDone: j.PercentDone,
		BackupSizeInBytes: &size, IamRoleArn: j.IamRoleArn, ResourceType: j.ResourceType, IsParent: j.IsParent, ParentJobId: j.ParentJobID}
	if j.State == "COMPLETED" {
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
	if (j.State == "PENDING" || j.State == "RUNNING") && j.ExpectedCompletionDate != nil {
		m := int64(math.Ceil(j.ExpectedCompletionDate.Sub(s.deps.Clock.Now()).Minutes()))
		if m < 0 {
			m = 0
		}
		o.ExpectedCompletionTimeMinutes = &m
	}
	x, err := tx.GetRestoreJobExtra(ctx, store.Scope{AccountID: j.AccountID, Region: j.Region}, j.ID)
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

func (s *Server) getRestoreJob(ctx context.Context, tx store.Tx, id Identity, jobID string) (*backup.Job, error) {
	j, err := tx.GetJob(ctx, id.scope(), backup.JobRestore, jobID)
	if backup.IsCode(err, backup.CodeNotFound) {
		return nil, restoreJobNotFound(jobID)
	}
	return j, err
}

func (s *Server) describeRestoreJob(ctx context.Context, id Identity, in *RestoreJobIdInput) (*RestoreJobOutput, error) {
	var out RestoreJobOutput
	err := s.deps.Store.Read(ctx, func(tx store.Tx) error {
		j, err := getJobOrg(ctx, tx, id, backup.JobRestore, in.RestoreJobId) // management: any member's job
		if backup.IsCode(err, backup.CodeNotFound) {
			err = restoreJobNotFound(in.RestoreJobId)
		}
		if err != nil {
			return err
		}
		out, err = s.restoreJobOut(ctx, tx, id.scope(), j)
		return err
	})
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
	f := store.JobFilter{Kind: backup.JobRestore, State: optStr(in.ByStatus), ResourceType: optStr(in.ByResourceType),
		ParentJobID: optStr(in.ByParentJobId), CreatedAfter: optTime(in.ByCreatedAfter), CreatedBefore: optTime(in.ByCreatedBefore),
		CompleteAfter: optTime(in.ByCompleteAfter), CompleteBefore: optTime(in.ByCompleteBefore)}
	filter := struct {
		F    store.JobFilter
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
	view := resolveOrgView(id, in.ByAccountId)
	if view.None {
		return out, nil // other accounts' jobs are invisible outside the management account
	}
	scope := view.Scope
	f.AllAccounts = view.All
	err = s.deps.Store.Read(ctx, func(tx store.Tx) error {
		js, next, err := tx.ListJobs(ctx, scope, f, pg)
		if err != nil {
			return err
		}
		for _, j := range js {
			o, err := s.restoreJobOut(ctx, tx, scope, j)
			if err != nil {
				return err
			}
			out.RestoreJobs = append(out.RestoreJobs, o)
		}
		out.NextToken = s.pager.issue(id.AccountID, "ListRestoreJobs", filter, next)
		return nil
	})
	if err != nil {
		return nil, err
	}
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
	q := store.RestoreJobQuery{ResourceArn: in.ResourceArn, State: optStr(in.ByStatus),
		RPCreatedAfter: optTime(in.ByRecoveryPointCreationDateAfter), RPCreatedBefore: optTime(in.ByRecoveryPointCreationDateBefore)}
	pg, err := s.pager.page(id.AccountID, "ListRestoreJobsByProtectedResource", q, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListRestoreJobsOutput{RestoreJobs: []RestoreJobOutput{}}
	err = s.deps.Store.Read(ctx, func(tx store.Tx) error {
		if _, err := tx.GetProtectedResource(ctx, id.scope(), in.ResourceArn); err != nil {
			if backup.IsCode(err, backup.CodeNotFound) {
				return &Error{Status: 400, Code: excNotFound, Context: in.ResourceArn, Message: "Protected resource " + in.ResourceArn + " does not exist"}
			}
			return err
		}
		js, next, err := tx.ListRestoreJobsByResource(ctx, id.scope(), q, pg)
		if err != nil {
			return err
		}
		for _, j := range js {
			o, err := s.restoreJobOut(ctx, tx, id.scope(), j)
			if err != nil {
				return err
			}
			out.RestoreJobs = append(out.RestoreJobs, o)
		}
		out.NextToken = s.pager.issue(id.AccountID, "ListRestoreJobsByProtectedResource", q, next)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetRestoreJobMetadataOutput is the output of GetRestoreJobMetadata.
type GetRestoreJobMetadataOutput struct {
	RestoreJobId string
	Metadata     map[string]string
}

func (s *Server) getRestoreJobMetadata(ctx context.Context, id Identity, in *RestoreJobIdInput) (*GetRestoreJobMetadataOutput, error) {
	var out *GetRestoreJobMetadataOutput
	err := s.deps.Store.Read(ctx, func(tx store.Tx) error {
		j, err := s.getRestoreJob(ctx, tx, id, in.RestoreJobId)
		if err != nil {
			return err
		}
		var p struct {
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(j.ParametersJSON), &p); err != nil {
			return err
		}
		if p.Metadata == nil {
			p.Metadata = map[string]string{}
		}
		out = &GetRestoreJobMetadataOutput{RestoreJobId: j.ID, Metadata: p.Metadata}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
	var out *GetRecoveryPointRestoreMetadataOutput
	notFound := &Error{Status: 400, Code: excNotFound, Context: in.RecoveryPointArn,
		Message: "Recovery point " + in.RecoveryPointArn + " does not exist in backup vault " + in.BackupVaultName}
	if in.BackupVaultAccountId != nil && *in.BackupVaultAccountId != id.AccountID {
		return nil, notFound // Coffer does not share vaults across accounts
	}
	err := s.deps.Store.Read(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, id.scope(), in.BackupVaultName)
		if backup.IsCode(err, backup.CodeNotFound) {
			return &Error{Status: 400, Code: excNotFound, Context: in.BackupVaultName, Message: "Backup vault " + in.BackupVaultName + " does not exist"}
		}
		if err != nil {
			return err
		}
		rp, err := tx.GetRecoveryPoint(ctx, id.scope(), in.RecoveryPointArn)
		if backup.IsCode(err, backup.CodeNotFound) || (err == nil && rp.VaultName != v.Name) {
			return notFound
		}
		if err != nil {
			return err
		}
		md := map[string]string{}
		if rp.ResourceType == backup.ResourceTypeEFS {
			fsID := rp.ResourceArn[strings.LastIndex(rp.ResourceArn, "/")+1:]
			md = map[string]string{restorejob.KeyFileSystemID: fsID, restorejob.KeyNewFileSystem: "true",
				restorejob.KeyEncrypted: "false", restorejob.KeyPerformanceMode: restorejob.PerformanceGeneralPurpose}
		}
		out = &GetRecoveryPointRestoreMetadataOutput{BackupVaultArn: v.Arn, RecoveryPointArn: rp.Arn, RestoreMetadata: md, ResourceType: rp.ResourceType}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
