package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/copyjob"
	"coffer/internal/jobs"
	"coffer/internal/store"
)

const opStartCopyJob = "StartCopyJob"

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

// copyLifecycle validates a copy's Lifecycle; DeleteAfterDays = -1 keeps
// the source recovery point's expiry.
func copyLifecycle(in *LifecycleInput) (backup.Lifecycle, bool, error) {
	if in == nil {
		return backup.Lifecycle{}, false, nil
	}
	l := *in
	keep := false
	if l.DeleteAfterDays != nil && *l.DeleteAfterDays == -1 {
		keep = true
		l.DeleteAfterDays = nil
	}
	lc, err := l.toDomain("Lifecycle")
	return lc, keep, err
}

func (s *Server) startCopyJob(ctx context.Context, id Identity, in *StartCopyJobInput) (*StartCopyJobOutput, error) {
	if !iamRoleArnRE.MatchString(in.IamRoleArn) {
		return nil, invalidParam("IamRoleArn", "IamRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), not %q", truncate(in.IamRoleArn, 300))
	}
	lc, keep, err := copyLifecycle(in.Lifecycle)
	if err != nil {
		return nil, err
	}
	dRegion, dAcct, dName, ok := copyjob.ParseVaultArn(in.DestinationBackupVaultArn)
	if !ok {
		return nil, invalidParam("DestinationBackupVaultArn", "DestinationBackupVaultArn must be a backup vault ARN, not %q", truncate(in.DestinationBackupVaultArn, 300))
	}
	if dRegion != id.Region {
		return nil, invalidParam("DestinationBackupVaultArn", "Cross-region copies are not supported: this server serves region %s", id.Region)
	}
	if rRegion, rAcct, ok := rpArnAccount(in.RecoveryPointArn); !ok {
		return nil, invalidParam("RecoveryPointArn", "RecoveryPointArn must be a recovery point ARN, not %q", truncate(in.RecoveryPointArn, 300))
	} else if rAcct != id.AccountID || rRegion != id.Region {
		// Another account's recovery point: denied whether or not it exists.
		return nil, apiErr(http.StatusForbidden, excAccessDenied, "Access denied to recovery point %s", truncate(in.RecoveryPointArn, 300))
	}
	token := optStr(in.IdempotencyToken)
	digestIn := *in
	digestIn.IdempotencyToken = nil
	digest := paramsDigest(digestIn)
	jobID := newJobID()
	params, _ := json.Marshal(copyjob.Params{DestinationAccount: dAcct, DestinationVaultName: dName, KeepSourceExpiry: keep,
		DestinationRecoveryPointArn: backup.RecoveryPointArn(id.Region, dAcct, strings.ToLower(newJobID()))})

	now := s.deps.Clock.Now()
	var out *StartCopyJobOutput
	err = s.deps.Store.Write(ctx, func(tx store.Tx) error {
		j, err := replayJob(ctx, tx, id.scope(), opStartCopyJob, token, digest, backup.JobCopy, now)
		if err != nil {
			return err
		}
		if j != nil {
			out = &StartCopyJobOutput{CopyJobId: j.ID, CreationDate: ts(j.CreationDate)}
			return nil
		}
		v, err := tx.GetVault(ctx, id.scope(), in.SourceBackupVaultName)
		if err != nil {
			return err
		}
		rp, err := tx.GetRecoveryPoint(ctx, id.scope(), in.RecoveryPointArn)
		if err != nil {
			return err
		}
		if rp.VaultName != v.Name {
			return &backup.Error{Code: backup.CodeNotFound, Context: in.RecoveryPointArn,
				Message: "Recovery point " + truncate(in.RecoveryPointArn, 300) + " does not exist in backup vault " + v.Name}
		}
		if rp.Status != "COMPLETED" {
			return backup.Errorf(backup.CodeInvalidRequest, "Recovery point %s is %s; only COMPLETED recovery points can be copied", rp.Arn, rp.Status)
		}
		if rp.StorageClass == "COLD" {
			return backup.Errorf(backup.CodeInvalidRequest, "Recovery point %s is in cold storage and cannot be copied", rp.Arn)
		}
		if dAcct == id.AccountID {
			// Same account: a missing destination is the caller's own
			// mistake. Other accounts' vaults are checked by the job, so the
			// call reveals nothing about them.
			if _, err := tx.GetVault(ctx, id.scope(), dName); err != nil {
				return err
			}
		}
		j = &backup.Job{Kind: backup.JobCopy, ID: jobID, AccountID: id.AccountID, Region: id.Region, State: jobs.StateCreated,
			CreationDate: now, VaultName: v.Name, VaultArn: v.Arn, DestinationVaultArn: in.DestinationBackupVaultArn,
			RecoveryPointArn: rp.Arn, ResourceArn: rp.ResourceArn, ResourceType: rp.ResourceType, ResourceName: rp.ResourceName,
			BackupSizeBytes: rp.BackupSizeBytes, IamRoleArn: in.IamRoleArn, Lifecycle: lc, IdempotencyToken: token,
			ParametersJSON: string(params)}
		if err := tx.CreateJob(ctx, j); err != nil {
			return err
		}
		if token != "" {
			if err := tx.PutIdempotency(ctx, id.scope(), &store.Idempotency{Operation: opStartCopyJob, Token: token,
				ParamsDigest: digest, ResultID: jobID, ExpiresAt: now.Add(idempotencyWindow)}); err != nil {
				return err
			}
		}
		out = &StartCopyJobOutput{CopyJobId: jobID, CreationDate: ts(now)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.deps.Jobs != nil {
		s.deps.Jobs.Notify()
	}
	return out, nil
}

// rpArnAccount returns the region and account of a recovery point ARN.
func rpArnAccount(arn string) (region, account string, ok bool) {
	p := strings.SplitN(arn, ":", 7)
	if len(p) != 7 || p[0] != "arn" || p[2] != "backup" || p[5] != "recovery-point" || p[6] == "" {
		return "", "", false
	}
	return p[3], p[4], true
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
		CompletionDate: tsp(j.CompletionDate), State: j.State, StatusMessage: j.StatusMessage, BackupSizeInBytes: &size,
		IamRoleArn: j.IamRoleArn, ResourceType: j.ResourceType, ParentJobId: j.ParentJobID, IsParent: j.IsParent,
		ResourceName: j.ResourceName, MessageCategory: j.MessageCategory}
	lc := j.Lifecycle
	if p, err := copyjob.ParseParams(j.ParametersJSON); err == nil && p.KeepSourceExpiry {
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
	var out DescribeCopyJobOutput
	err := s.deps.Store.Read(ctx, func(tx store.Tx) error {
		j, err := getJobOrg(ctx, tx, id, backup.JobCopy, in.CopyJobId)
		if backup.IsCode(err, backup.CodeNotFound) {
			return &backup.Error{Code: backup.CodeNotFound, Context: in.CopyJobId, Message: "Copy job " + truncate(in.CopyJobId, 100) + " does not exist"}
		}
		if err != nil {
			return err
		}
		out.CopyJob = copyJobOut(j)
		var zero int64
		out.CopyJob.NumberOfChildJobs = &zero
		return nil
	})
	if err != nil {
		return nil, err
	}
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
	f := store.JobFilter{Kind: backup.JobCopy, State: str(in.ByState), ResourceArn: str(in.ByResourceArn),
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
