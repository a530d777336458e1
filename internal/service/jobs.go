package service

import (
	"context"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// JobFilter narrows a job list; every set field is AND-combined.
type JobFilter = store.JobFilter

// OrgView is how a list request's account parameter (AWS ByAccountId)
// resolves for the caller.
type OrgView struct {
	Scope store.Scope
	// All lists every account of the region (management account only).
	All bool
	// None: the request names another account and the caller may not see
	// it, so the answer is empty (never another account's data).
	None bool
}

// ResolveOrgView applies the organization rules to an account parameter
// (nil when absent): the management account may name any account or
// "*"/ANY/AGGREGATE_ALL (every account); a member account naming itself or
// a wildcard sees its own jobs, naming another account sees nothing.
func (c Caller) ResolveOrgView(acct *string) OrgView {
	v := OrgView{Scope: c.Scope()}
	if acct == nil || *acct == c.AccountID {
		return v
	}
	wildcard := *acct == "*" || *acct == "ANY" || *acct == "AGGREGATE_ALL"
	switch {
	case wildcard && c.Management:
		v.All = true
	case wildcard:
		// A member account's "every account" is itself.
	case c.Management:
		v.Scope.AccountID = *acct
	default:
		v.None = true
	}
	return v
}

// DescribeJob returns a job of the caller's account; the management
// account may also read any member account's job in its region. Other
// accounts' jobs behave exactly as missing ones.
func (s *Service) DescribeJob(ctx context.Context, c Caller, kind backup.JobKind, id string) (*backup.Job, error) {
	var j *backup.Job
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		j, err = getJobOrg(ctx, tx, c, kind, id)
		return err
	})
	return j, err
}

func getJobOrg(ctx context.Context, tx store.Jobs, c Caller, kind backup.JobKind, jobID string) (*backup.Job, error) {
	j, err := tx.GetJob(ctx, c.Scope(), kind, jobID)
	if err == nil || !c.Management || !backup.IsCode(err, backup.CodeNotFound) {
		return j, err
	}
	o, oerr := tx.GetJobByID(ctx, jobID)
	if oerr != nil || o.Kind != kind || o.Region != c.Region {
		return nil, err
	}
	return o, nil
}

// ListJobs lists one page of jobs of the accounts acct resolves to (see
// ResolveOrgView), newest first.
func (s *Service) ListJobs(ctx context.Context, c Caller, acct *string, f JobFilter, p Page) ([]*backup.Job, string, error) {
	view := c.ResolveOrgView(acct)
	if view.None {
		return nil, "", nil
	}
	f.AllAccounts = view.All
	var js []*backup.Job
	var next string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		js, next, err = tx.ListJobs(ctx, view.Scope, f, p)
		return err
	})
	return js, next, err
}

// RestoreJobInfo is what a restore job shows besides backup.Job.
type RestoreJobInfo struct {
	// RecoveryPointCreationDate is kept with the job, so it survives the
	// recovery point.
	RecoveryPointCreationDate time.Time
}

// RestoreJobInfo returns j's restore-specific fields.
func (s *Service) RestoreJobInfo(ctx context.Context, j *backup.Job) (RestoreJobInfo, error) {
	var info RestoreJobInfo
	err := s.st.Read(ctx, func(tx store.Tx) error {
		x, err := tx.GetRestoreJobExtra(ctx, store.Scope{AccountID: j.AccountID, Region: j.Region}, j.ID)
		if err != nil {
			return err
		}
		info.RecoveryPointCreationDate = x.RecoveryPointCreationDate
		return nil
	})
	return info, err
}

// RestoreJobQuery narrows ListRestoreJobsByResource.
type RestoreJobQuery = store.RestoreJobQuery

// ListRestoreJobsByResource lists restore jobs of recovery points of a
// protected resource of the caller (NotFound for an unknown resource).
func (s *Service) ListRestoreJobsByResource(ctx context.Context, c Caller, q RestoreJobQuery, p Page) ([]*backup.Job, string, error) {
	var js []*backup.Job
	var next string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		if _, err := tx.GetProtectedResource(ctx, c.Scope(), q.ResourceArn); err != nil {
			if backup.IsCode(err, backup.CodeNotFound) {
				return backup.NotFound(q.ResourceArn, "Protected resource %s does not exist", q.ResourceArn)
			}
			return err
		}
		var err error
		js, next, err = tx.ListRestoreJobsByResource(ctx, c.Scope(), q, p)
		return err
	})
	return js, next, err
}

// JobInUse reports which restore or copy job still reads recovery point
// rpArn ("" when none). Jobs of every account count: a cross-account
// restore belongs to the account it restores into.
func JobInUse(ctx context.Context, tx store.Jobs, sc store.Scope, rpArn string) (string, error) {
	for _, kind := range []backup.JobKind{backup.JobRestore, backup.JobCopy} {
		js, _, err := tx.ListJobs(ctx, sc, store.JobFilter{Kind: kind, RecoveryPointArn: rpArn, AllAccounts: true}, store.Page{Limit: 1000})
		if err != nil {
			return "", err
		}
		for _, j := range js {
			if !j.State.Terminal() {
				return strings.ToLower(string(kind)) + " job " + j.ID, nil
			}
		}
	}
	return "", nil
}

// JobVault returns the vault a job names (VaultName, in the job's
// account).
func (s *Service) JobVault(ctx context.Context, j *backup.Job) (*backup.Vault, error) {
	var v *backup.Vault
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		v, err = tx.GetVault(ctx, store.Scope{AccountID: j.AccountID, Region: j.Region}, j.VaultName)
		return err
	})
	return v, err
}

// JobSummaryQuery asks for job counts (see store.JobSummaryQuery).
type JobSummaryQuery = store.JobSummaryQuery

// JobSummaryRow is one group's count.
type JobSummaryRow = store.JobSummaryRow

// SummarizeJobs counts jobs for the job summaries. q.AccountID "" counts
// every account and is the management account's only; a member account
// only ever counts its own jobs (another account's query counts nothing).
func (s *Service) SummarizeJobs(ctx context.Context, c Caller, q JobSummaryQuery) ([]JobSummaryRow, error) {
	if q.Region != c.Region || (q.AccountID != c.AccountID && !c.Management) {
		return nil, nil
	}
	var rows []JobSummaryRow
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		rows, err = tx.SummarizeJobs(ctx, q)
		return err
	})
	return rows, err
}
