package api

import (
	"context"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// orgView is how a list request's account member resolves for the caller.
type orgView struct {
	Scope store.Scope
	// All lists every account of the region (management account only).
	All bool
	// None: the request names another account and the caller may not see
	// it, so the answer is empty (never another account's data).
	None bool
}

// resolveOrgView applies the organization rules to a ByAccountId /
// AccountId value: the management account may name any account or
// "*"/ANY (every account); a member account naming itself or "*"/ANY sees
// its own jobs, naming another account sees nothing.
func resolveOrgView(id Identity, acct *string) orgView {
	v := orgView{Scope: id.scope()}
	if acct == nil || *acct == id.AccountID {
		return v
	}
	wildcard := *acct == "*" || *acct == "ANY" || *acct == "AGGREGATE_ALL"
	switch {
	case wildcard && id.Management:
		v.All = true
	case wildcard:
		// A member account's "every account" is itself.
	case id.Management:
		v.Scope.AccountID = *acct
	default:
		v.None = true
	}
	return v
}

// getJobOrg reads a job of the caller's account; the management account
// may also read any member account's job in its region. Other accounts'
// jobs behave exactly as missing ones.
func getJobOrg(ctx context.Context, tx store.Tx, id Identity, kind backup.JobKind, jobID string) (*backup.Job, error) {
	j, err := tx.GetJob(ctx, id.scope(), kind, jobID)
	if err == nil || !id.Management || !backup.IsCode(err, backup.CodeNotFound) {
		return j, err
	}
	o, oerr := tx.GetJobByID(ctx, jobID)
	if oerr != nil || o.Kind != kind || o.Region != id.Region {
		return nil, err
	}
	return o, nil
}

// listJobPage serves one page of a job list: it applies the organization
// view of acct, binds the page token to the filter and the resolved
// account, and converts each job with conv.
func listJobPage[T any](ctx context.Context, s *Server, id Identity, op string, acct *string, f store.JobFilter,
	token *string, max *int64, conv func(*backup.Job) T) ([]T, *string, error) {
	items := []T{}
	view := resolveOrgView(id, acct)
	if view.None {
		return items, nil, nil
	}
	f.AllAccounts = view.All
	bound := struct {
		F       store.JobFilter
		Account string
	}{f, view.Scope.AccountID}
	pg, err := s.pager.page(id.AccountID, op, bound, token, max)
	if err != nil {
		return nil, nil, err
	}
	var next *string
	err = s.deps.Store.Read(ctx, func(tx store.Tx) error {
		js, cursor, err := tx.ListJobs(ctx, view.Scope, f, pg)
		if err != nil {
			return err
		}
		for _, j := range js {
			items = append(items, conv(j))
		}
		next = s.pager.issue(id.AccountID, op, bound, cursor)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return items, next, nil
}
