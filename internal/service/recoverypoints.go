package service

import (
	"context"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// RecoveryPointQuery narrows a recovery point list.
type RecoveryPointQuery = store.RecoveryPointQuery

// ListRecoveryPoints lists one page of the caller's recovery points,
// newest first. With q.VaultName set, the vault must exist.
func (s *Service) ListRecoveryPoints(ctx context.Context, c Caller, q RecoveryPointQuery, p Page) ([]*backup.RecoveryPoint, string, error) {
	var rps []*backup.RecoveryPoint
	var next string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		if q.VaultName != "" {
			if _, err := tx.GetVault(ctx, c.Scope(), q.VaultName); err != nil {
				return err
			}
		}
		var err error
		rps, next, err = tx.QueryRecoveryPoints(ctx, c.Scope(), q, p)
		return err
	})
	return rps, next, err
}

// recoveryPointIn loads a recovery point that must be in the named vault.
func recoveryPointIn(ctx context.Context, tx store.Tx, sc store.Scope, vault, arn string) (*backup.Vault, *backup.RecoveryPoint, error) {
	v, err := tx.GetVault(ctx, sc, vault)
	if err != nil {
		return nil, nil, err
	}
	rp, err := tx.GetRecoveryPoint(ctx, sc, arn)
	if backup.IsCode(err, backup.CodeNotFound) || (err == nil && rp.VaultName != v.Name) {
		return nil, nil, backup.NotFound(arn, "Recovery point %s does not exist", backup.Truncate(arn, 300))
	}
	return v, rp, err
}

// DescribeRecoveryPoint returns a recovery point of the caller's vault.
func (s *Service) DescribeRecoveryPoint(ctx context.Context, c Caller, vault, arn string) (*backup.RecoveryPoint, error) {
	var rp *backup.RecoveryPoint
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		_, rp, err = recoveryPointIn(ctx, tx, c.Scope(), vault, arn)
		return err
	})
	return rp, err
}

// DeleteRecoveryPoint deletes a recovery point unless an active legal hold
// or its vault's lock protects it or a restore or copy still reads it; its repository data is
// then deleted (or left to the sweeper's orphan pass when that fails).
func (s *Service) DeleteRecoveryPoint(ctx context.Context, c Caller, vaultName, arn string) error {
	var vault *backup.Vault
	var manifest string
	err := s.st.Write(ctx, func(tx store.Tx) error {
		v, rp, err := recoveryPointIn(ctx, tx, c.Scope(), vaultName, arn)
		if err != nil {
			return err
		}
		why, err := legalHoldRefusal(ctx, tx, c.Scope(), rp.Arn)
		if err != nil {
			return err
		}
		if why != "" {
			return &backup.Error{Code: backup.CodeInvalidRequest, Message: why, Context: rp.Arn}
		}
		if why := v.LockRefusesDelete(rp, s.clk.Now()); why != "" {
			return &backup.Error{Code: backup.CodeInvalidRequest, Message: why, Context: rp.Arn}
		}
		user, err := JobInUse(ctx, tx, c.Scope(), rp.Arn)
		if err != nil {
			return err
		}
		if user != "" {
			return &backup.Error{Code: backup.CodeInvalidState, Context: rp.Arn, Message: "Recovery point " + rp.Arn + " is in use by " + user}
		}
		vault, manifest = v, rp.ManifestID
		return tx.DeleteRecoveryPoint(ctx, c.Scope(), rp.Arn)
	})
	if err != nil {
		return err
	}
	// The row is gone; now drop the manifest so that prune reclaims the
	// data. If this fails the manifest is an orphan that the sweeper's
	// orphan pass removes.
	if s.deps.RecoveryPointData != nil && manifest != "" {
		if err := s.deps.RecoveryPointData.DeleteRecoveryPointData(ctx, vault, manifest); err != nil {
			s.log.Warn("recovery point data not deleted; left to the sweeper", "arn", arn, "err", err)
		}
	}
	return nil
}

// UpdateRecoveryPointLifecycle changes a recovery point's lifecycle within
// its vault lock's bounds.
func (s *Service) UpdateRecoveryPointLifecycle(ctx context.Context, c Caller, vaultName, arn string, lc backup.Lifecycle) (*backup.Vault, *backup.RecoveryPoint, error) {
	if err := lc.Validate("Lifecycle"); err != nil {
		return nil, nil, err
	}
	var v *backup.Vault
	var rp *backup.RecoveryPoint
	err := s.st.Write(ctx, func(tx store.Tx) error {
		var err error
		v, rp, err = recoveryPointIn(ctx, tx, c.Scope(), vaultName, arn)
		if err != nil {
			return err
		}
		if err := v.CheckLock(lc); err != nil {
			return &backup.Error{Code: backup.CodeInvalidRequest, Message: "Lifecycle not allowed: " + err.Error(), Context: rp.Arn}
		}
		if rp.StorageClass == backup.StorageCold && !sameDays(rp.Lifecycle.MoveToColdStorageAfterDays, lc.MoveToColdStorageAfterDays) {
			return &backup.Error{Code: backup.CodeInvalidRequest, Context: rp.Arn,
				Message: "MoveToColdStorageAfterDays cannot change after the recovery point moved to cold storage"}
		}
		rp.Lifecycle = lc
		rp.MoveToColdStorageAt, rp.DeleteAt = lc.Schedule(rp.CreationDate)
		return tx.UpdateRecoveryPoint(ctx, rp)
	})
	if err != nil {
		return nil, nil, err
	}
	return v, rp, nil
}

func sameDays(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
