package service

import (
	"coffer/internal/accesspolicy"
	"coffer/internal/backup"
	"coffer/internal/store"
)

// IAM actions a source vault's access policy may grant another account to
// restore its recovery points (either one suffices; a Deny of either one
// refuses).
const (
	ActionStartRestoreJob     = "backup:StartRestoreJob"
	ActionHBRCreateRestoreJob = "hbr:CreateRestoreJob"
)

// restoreSource returns the scope a restore reads its recovery point from
// and whether that is another account than the caller's. The recovery
// point ARN must name that account and the caller's region; anything else
// is NotFound, exactly like a missing recovery point.
func restoreSource(c Caller, req StartRestoreRequest, region, account string) (store.Scope, bool, error) {
	notFound := backup.NotFound(req.RecoveryPointArn, "Recovery point %s does not exist", req.RecoveryPointArn)
	src := c.Scope()
	cross := req.SourceAccount != "" && req.SourceAccount != c.AccountID
	if cross {
		if !backup.ValidAccountID(req.SourceAccount) {
			return src, false, backup.InvalidParam("SourceAccount", "the source account must be a 12-digit account id")
		}
		if req.VaultName == "" {
			return src, false, backup.MissingParam("VaultName")
		}
		src.AccountID = req.SourceAccount
	}
	if region != src.Region || account != src.AccountID {
		return src, false, notFound
	}
	return src, cross, nil
}

// authorizeCrossAccountRestore lets the caller restore from vault
// vaultName of account src only when the vault (nil: missing) has an
// access policy that allows the caller's account ActionHBRCreateRestoreJob
// or ActionStartRestoreJob and denies neither. A missing vault is refused
// exactly like one whose policy does not allow the caller.
func authorizeCrossAccountRestore(c Caller, src store.Scope, vaultName string, v *backup.Vault) error {
	denied := &backup.Error{Code: backup.CodeAccessDenied, Context: vaultName,
		Message: "Access denied: backup vault " + vaultName + " of account " + src.AccountID + " does not allow account " +
			c.AccountID + " to restore its recovery points (" + ActionHBRCreateRestoreJob + " or " + ActionStartRestoreJob + ")"}
	if v == nil || v.AccessPolicy == nil {
		return denied
	}
	allowed := false
	for _, action := range []string{ActionHBRCreateRestoreJob, ActionStartRestoreJob} {
		d, err := accesspolicy.Evaluate(*v.AccessPolicy, accesspolicy.Request{Account: c.AccountID, Action: action, Resource: v.Arn})
		if err != nil || d == accesspolicy.ExplicitDeny {
			return denied
		}
		allowed = allowed || d == accesspolicy.Allow
	}
	if !allowed {
		return denied
	}
	return nil
}
