package service

import (
	"context"
	"fmt"
	"time"

	"coffer/internal/accesspolicy"
	"coffer/internal/backup"
	"coffer/internal/store"
)

// CreateVaultRequest creates a backup vault.
type CreateVaultRequest struct {
	Name             string
	Tags             map[string]string
	EncryptionKeyArn string // "" = the service's own key
	CreatorRequestID string // makes the create idempotent
}

// CreateVault creates a vault and its repository. A vault of that name
// created with the same CreatorRequestID is returned as is.
func (s *Service) CreateVault(ctx context.Context, c Caller, req CreateVaultRequest) (*backup.Vault, error) {
	v := &backup.Vault{AccountID: c.AccountID, Region: c.Region, Name: req.Name, Arn: backup.VaultArn(c.Region, c.AccountID, req.Name),
		VaultType: backup.VaultTypeBackup, VaultState: backup.VaultStateAvailable, CreationDate: s.clk.Now()}
	if req.EncryptionKeyArn != "" {
		if !backup.ValidKMSKeyArn(req.EncryptionKeyArn) {
			return nil, backup.InvalidParam("EncryptionKeyArn", "EncryptionKeyArn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not %q", req.EncryptionKeyArn)
		}
		v.EncryptionKeyArn = req.EncryptionKeyArn
	}
	if req.CreatorRequestID != "" {
		if !backup.ValidCreatorRequestID(req.CreatorRequestID) {
			return nil, backup.InvalidParam("CreatorRequestId", "CreatorRequestId must be 1 to 50 characters of A-Za-z0-9-_.")
		}
		v.CreatorRequestID = req.CreatorRequestID
	}
	if err := backup.ValidateTags("Tags", req.Tags); err != nil {
		return nil, err
	}
	var out *backup.Vault
	err := s.st.Write(ctx, func(tx store.Tx) error {
		if old, err := tx.GetVault(ctx, c.Scope(), v.Name); err == nil {
			if v.CreatorRequestID != "" && old.CreatorRequestID == v.CreatorRequestID {
				out = old
				return nil
			}
		} else if !backup.IsCode(err, backup.CodeNotFound) {
			return err
		}
		if err := tx.CreateVault(ctx, v); err != nil {
			return err
		}
		if len(req.Tags) > 0 {
			if err := tx.PutTags(ctx, v.Arn, req.Tags); err != nil {
				return err
			}
		}
		if s.deps.VaultStorage != nil {
			if err := s.deps.VaultStorage.CreateVaultStorage(ctx, v); err != nil {
				return fmt.Errorf("create storage of vault %s: %w", v.Name, err)
			}
		}
		out = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// VaultInfo is a vault with its number of recovery points.
type VaultInfo struct {
	*backup.Vault
	RecoveryPoints int64
}

// DescribeVault returns a vault of the caller.
func (s *Service) DescribeVault(ctx context.Context, c Caller, name string) (VaultInfo, error) {
	var out VaultInfo
	err := s.st.Read(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, c.Scope(), name)
		if err != nil {
			return err
		}
		n, err := tx.CountRecoveryPoints(ctx, c.Scope(), v.Name)
		out = VaultInfo{Vault: v, RecoveryPoints: n}
		return err
	})
	return out, err
}

// VaultFilter narrows ListVaults.
type VaultFilter = store.VaultFilter

// ListVaults lists one page of the caller's vaults, by name.
func (s *Service) ListVaults(ctx context.Context, c Caller, f VaultFilter, p Page) ([]VaultInfo, string, error) {
	var out []VaultInfo
	var next string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		vs, n, err := tx.ListVaults(ctx, c.Scope(), f, p)
		if err != nil {
			return err
		}
		next = n
		for _, v := range vs {
			cnt, err := tx.CountRecoveryPoints(ctx, c.Scope(), v.Name)
			if err != nil {
				return err
			}
			out = append(out, VaultInfo{Vault: v, RecoveryPoints: cnt})
		}
		return nil
	})
	return out, next, err
}

// DeleteVault deletes an empty vault and its repository. It is refused
// while a job reads or writes the vault.
func (s *Service) DeleteVault(ctx context.Context, c Caller, name string) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, c.Scope(), name)
		if err != nil {
			return err
		}
		busy, err := vaultJob(ctx, tx, v)
		if err != nil {
			return err
		}
		if busy != nil {
			return &backup.Error{Code: backup.CodeInvalidRequest, Context: v.Name,
				Message: fmt.Sprintf("Backup vault %s is in use by %s job %s (%s); delete it when the job has ended", v.Name,
					lowerKind(busy.Kind), busy.ID, busy.State)}
		}
		if err := tx.DeleteVault(ctx, c.Scope(), v.Name); err != nil { // refuses non-empty vaults, drops tags
			return err
		}
		if s.deps.VaultStorage != nil {
			if err := s.deps.VaultStorage.DeleteVaultStorage(ctx, v); err != nil {
				return fmt.Errorf("delete storage of vault %s: %w", v.Name, err)
			}
		}
		return nil
	})
}

func lowerKind(k backup.JobKind) string {
	switch k {
	case backup.JobBackup:
		return "backup"
	case backup.JobCopy:
		return "copy"
	}
	return "restore"
}

// vaultJob returns a job that is not finished and reads or writes v: a
// backup into it, a copy or restore from it, a copy into it (from any
// account); nil when none.
func vaultJob(ctx context.Context, tx store.Jobs, v *backup.Vault) (*backup.Job, error) {
	sc := store.Scope{AccountID: v.AccountID, Region: v.Region}
	for _, st := range backup.ActiveJobStates {
		for _, f := range []store.JobFilter{
			{Kind: backup.JobBackup, VaultName: v.Name},
			{Kind: backup.JobCopy, VaultName: v.Name},
			{Kind: backup.JobRestore, VaultName: v.Name},
			{Kind: backup.JobCopy, DestinationVaultArn: v.Arn, AllAccounts: true},
		} {
			f.State = st
			js, _, err := tx.ListJobs(ctx, sc, f, store.Page{Limit: 1})
			if err != nil {
				return nil, err
			}
			if len(js) > 0 {
				return js[0], nil
			}
		}
	}
	return nil, nil
}

// PutVaultAccessPolicy sets a vault's access policy (an IAM policy
// document).
func (s *Service) PutVaultAccessPolicy(ctx context.Context, c Caller, name, policy string) error {
	if policy == "" {
		return backup.MissingParam("Policy")
	}
	if err := accesspolicy.Validate(policy); err != nil {
		return backup.InvalidParam("Policy", "Invalid policy: %v", err)
	}
	return s.updateVault(ctx, c, name, func(v *backup.Vault) (bool, error) {
		v.AccessPolicy = &policy
		return true, nil
	})
}

// VaultAccessPolicy returns a vault's access policy (NotFound when it has
// none).
func (s *Service) VaultAccessPolicy(ctx context.Context, c Caller, name string) (*backup.Vault, string, error) {
	var v *backup.Vault
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		v, err = tx.GetVault(ctx, c.Scope(), name)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if v.AccessPolicy == nil {
		return nil, "", backup.NotFound(v.Name, "Backup vault %s has no access policy", v.Name)
	}
	return v, *v.AccessPolicy, nil
}

// DeleteVaultAccessPolicy removes a vault's access policy (nothing when it
// has none).
func (s *Service) DeleteVaultAccessPolicy(ctx context.Context, c Caller, name string) error {
	return s.updateVault(ctx, c, name, func(v *backup.Vault) (bool, error) {
		if v.AccessPolicy == nil {
			return false, nil
		}
		v.AccessPolicy = nil
		return true, nil
	})
}

// VaultLock is a vault lock configuration.
type VaultLock struct {
	MinRetentionDays  *int64
	MaxRetentionDays  *int64
	ChangeableForDays *int64 // compliance mode: immutable after this many days
}

// PutVaultLock locks a vault (or changes its lock while that is allowed).
func (s *Service) PutVaultLock(ctx context.Context, c Caller, name string, l VaultLock) error {
	if l.MinRetentionDays != nil && (*l.MinRetentionDays < 1 || *l.MinRetentionDays > backup.MaxRetentionDays) {
		return backup.InvalidParam("MinRetentionDays", "MinRetentionDays must be between 1 and %d", backup.MaxRetentionDays)
	}
	if l.MaxRetentionDays != nil && (*l.MaxRetentionDays < 1 || *l.MaxRetentionDays > backup.MaxRetentionDays) {
		return backup.InvalidParam("MaxRetentionDays", "MaxRetentionDays must be between 1 and %d", backup.MaxRetentionDays)
	}
	if l.MinRetentionDays != nil && l.MaxRetentionDays != nil && *l.MinRetentionDays > *l.MaxRetentionDays {
		return backup.InvalidParam("MinRetentionDays", "MinRetentionDays must not be greater than MaxRetentionDays")
	}
	if l.ChangeableForDays != nil && (*l.ChangeableForDays < backup.MinChangeableForDays || *l.ChangeableForDays > backup.MaxRetentionDays) {
		return backup.InvalidParam("ChangeableForDays", "ChangeableForDays must be between %d and %d", backup.MinChangeableForDays, backup.MaxRetentionDays)
	}
	now := s.clk.Now()
	return s.updateVault(ctx, c, name, func(v *backup.Vault) (bool, error) {
		if v.LockImmutable(now) {
			return false, &backup.Error{Code: backup.CodeInvalidRequest, Context: v.Name,
				Message: "The vault lock configuration of " + v.Name + " is immutable since its lock date"}
		}
		v.Locked, v.MinRetentionDays, v.MaxRetentionDays, v.LockDate = true, l.MinRetentionDays, l.MaxRetentionDays, nil
		if l.ChangeableForDays != nil {
			ld := now.Add(time.Duration(*l.ChangeableForDays) * 24 * time.Hour)
			v.LockDate = &ld
		}
		return true, nil
	})
}

// DeleteVaultLock removes a vault's lock while that is allowed.
func (s *Service) DeleteVaultLock(ctx context.Context, c Caller, name string) error {
	now := s.clk.Now()
	return s.updateVault(ctx, c, name, func(v *backup.Vault) (bool, error) {
		if v.LockImmutable(now) {
			return false, &backup.Error{Code: backup.CodeInvalidRequest, Context: v.Name,
				Message: "The vault lock configuration of " + v.Name + " is immutable since its lock date and cannot be deleted"}
		}
		v.Locked, v.MinRetentionDays, v.MaxRetentionDays, v.LockDate = false, nil, nil, nil
		return true, nil
	})
}

// updateVault applies change to a vault of the caller and stores it when
// change reports a change.
func (s *Service) updateVault(ctx context.Context, c Caller, name string, change func(v *backup.Vault) (bool, error)) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, c.Scope(), name)
		if err != nil {
			return err
		}
		changed, err := change(v)
		if err != nil || !changed {
			return err
		}
		return tx.UpdateVault(ctx, v)
	})
}
