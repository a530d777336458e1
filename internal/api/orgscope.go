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
