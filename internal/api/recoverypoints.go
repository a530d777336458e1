package api

import (
	"context"
	"fmt"
	"time"

	"coffer/internal/backup"
	"coffer/internal/backupjob"
	"coffer/internal/store"
)

// CalculatedLifecycleOutput is the wire CalculatedLifecycle.
type CalculatedLifecycleOutput struct {
	MoveToColdStorageAt *Timestamp `json:",omitempty"`
	DeleteAt            *Timestamp `json:",omitempty"`
}

func calculated(rp *backup.RecoveryPoint) *CalculatedLifecycleOutput {
	if rp.MoveToColdStorageAt == nil && rp.DeleteAt == nil {
		return nil
	}
	return &CalculatedLifecycleOutput{MoveToColdStorageAt: tsp(rp.MoveToColdStorageAt), DeleteAt: tsp(rp.DeleteAt)}
}

// RecoveryPointOutput is RecoveryPointByBackupVault and, with StorageClass,
// the DescribeRecoveryPoint output.
type RecoveryPointOutput struct {
	RecoveryPointArn     string                     `json:",omitempty"`
	BackupVaultName      string                     `json:",omitempty"`
	BackupVaultArn       string                     `json:",omitempty"`
	SourceBackupVaultArn string                     `json:",omitempty"`
	ResourceArn          string                     `json:",omitempty"`
	ResourceType         string                     `json:",omitempty"`
	IamRoleArn           string                     `json:",omitempty"`
	Status               string                     `json:",omitempty"`
	StatusMessage        string                     `json:",omitempty"`
	CreationDate         *Timestamp                 `json:",omitempty"`
	InitiationDate       *Timestamp                 `json:",omitempty"`
	CompletionDate       *Timestamp                 `json:",omitempty"`
	BackupSizeInBytes    int64                      `json:""`
	CalculatedLifecycle  *CalculatedLifecycleOutput `json:",omitempty"`
	Lifecycle            *LifecycleInput            `json:",omitempty"`
	EncryptionKeyArn     string                     `json:",omitempty"`
	IsEncrypted          bool
	StorageClass         string     `json:",omitempty"`
	LastRestoreTime      *Timestamp `json:",omitempty"`
	IsParent             bool
	ResourceName         string `json:",omitempty"`
	VaultType            string `json:",omitempty"`
	EncryptionKeyType    string `json:",omitempty"`
}

func rpOut(rp *backup.RecoveryPoint, withClass bool) RecoveryPointOutput {
	o := RecoveryPointOutput{RecoveryPointArn: rp.Arn, BackupVaultName: rp.VaultName, BackupVaultArn: rp.VaultArn,
		SourceBackupVaultArn: rp.SourceVaultArn, ResourceArn: rp.ResourceArn, ResourceType: rp.ResourceType, IamRoleArn: rp.IamRoleArn,
		Status: rp.Status, StatusMessage: rp.StatusMessage, CreationDate: ts(rp.CreationDate), InitiationDate: tsp(rp.InitiationDate),
		CompletionDate: tsp(rp.CompletionDate), BackupSizeInBytes: rp.BackupSizeBytes, CalculatedLifecycle: calculated(rp),
		Lifecycle: lifecycleOut(rp.Lifecycle), EncryptionKeyArn: rp.EncryptionKeyArn, IsEncrypted: true,
		LastRestoreTime: tsp(rp.LastRestoreTime), ResourceName: rp.ResourceName, VaultType: backup.VaultTypeBackup,
		EncryptionKeyType: backup.EncryptionAWSOwned}
	if rp.EncryptionKeyArn != "" {
		o.EncryptionKeyType = backup.EncryptionCustomerKey
	}
	if withClass {
		o.StorageClass = rp.StorageClass
	}
	return o
}

// ListRecoveryPointsByBackupVaultInput is the validated input.
type ListRecoveryPointsByBackupVaultInput struct {
	BackupVaultName          string
	BackupVaultAccountId     *string
	NextToken                *string
	MaxResults               *int64
	ByResourceArn            *string
	ByResourceType           *string
	ByBackupPlanId           *string
	ByCreatedBefore          *Timestamp
	ByCreatedAfter           *Timestamp
	ByParentRecoveryPointArn *string
}

// ListRecoveryPointsByBackupVaultOutput is its output.
type ListRecoveryPointsByBackupVaultOutput struct {
	NextToken      *string `json:",omitempty"`
	RecoveryPoints []RecoveryPointOutput
}

func (s *Server) listRecoveryPointsByBackupVault(ctx context.Context, id Identity, in *ListRecoveryPointsByBackupVaultInput) (*ListRecoveryPointsByBackupVaultOutput, error) {
	if in.BackupVaultAccountId != nil && *in.BackupVaultAccountId != id.AccountID {
		return nil, vaultNotFound(in.BackupVaultName)
	}
	q := store.RecoveryPointQuery{VaultName: in.BackupVaultName, ResourceArn: str(in.ByResourceArn), ResourceType: str(in.ByResourceType),
		CreatedAfter: tptr(in.ByCreatedAfter), CreatedBefore: tptr(in.ByCreatedBefore)}
	filter := struct {
		Q      store.RecoveryPointQuery
		Plan   string
		Parent string
	}{q, str(in.ByBackupPlanId), str(in.ByParentRecoveryPointArn)}
	pg, err := s.pager.page(id.AccountID, "ListRecoveryPointsByBackupVault", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListRecoveryPointsByBackupVaultOutput{RecoveryPoints: []RecoveryPointOutput{}}
	err = s.deps.Store.Read(ctx, func(tx store.Tx) error {
		if _, err := tx.GetVault(ctx, id.scope(), in.BackupVaultName); err != nil {
			return err
		}
		if filter.Plan != "" || filter.Parent != "" {
			// Coffer's recovery points are on-demand and never composite:
			// none was created by a plan or has a parent.
			return nil
		}
		rps, next, err := tx.QueryRecoveryPoints(ctx, id.scope(), q, pg)
		if err != nil {
			return err
		}
		for _, rp := range rps {
			out.RecoveryPoints = append(out.RecoveryPoints, rpOut(rp, false))
		}
		out.NextToken = s.pager.issue(id.AccountID, "ListRecoveryPointsByBackupVault", filter, next)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListRecoveryPointsByResourceInput is the validated input.
type ListRecoveryPointsByResourceInput struct {
	ResourceArn            string
	NextToken              *string
	MaxResults             *int64
	ManagedByAWSBackupOnly *bool
}

// RecoveryPointByResourceOutput is the wire RecoveryPointByResource (note
// BackupSizeBytes).
type RecoveryPointByResourceOutput struct {
	RecoveryPointArn  string     `json:",omitempty"`
	CreationDate      *Timestamp `json:",omitempty"`
	Status            string     `json:",omitempty"`
	StatusMessage     string     `json:",omitempty"`
	EncryptionKeyArn  string     `json:",omitempty"`
	BackupSizeBytes   int64
	BackupVaultName   string `json:",omitempty"`
	IsParent          bool
	ResourceName      string `json:",omitempty"`
	VaultType         string `json:",omitempty"`
	EncryptionKeyType string `json:",omitempty"`
}

// ListRecoveryPointsByResourceOutput is its output.
type ListRecoveryPointsByResourceOutput struct {
	NextToken      *string `json:",omitempty"`
	RecoveryPoints []RecoveryPointByResourceOutput
}

func (s *Server) listRecoveryPointsByResource(ctx context.Context, id Identity, in *ListRecoveryPointsByResourceInput) (*ListRecoveryPointsByResourceOutput, error) {
	// Every Coffer recovery point is created by the service, so
	// ManagedByAWSBackupOnly changes nothing.
	q := store.RecoveryPointQuery{ResourceArn: in.ResourceArn}
	pg, err := s.pager.page(id.AccountID, "ListRecoveryPointsByResource", q, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListRecoveryPointsByResourceOutput{RecoveryPoints: []RecoveryPointByResourceOutput{}}
	err = s.deps.Store.Read(ctx, func(tx store.Tx) error {
		rps, next, err := tx.QueryRecoveryPoints(ctx, id.scope(), q, pg)
		if err != nil {
			return err
		}
		for _, rp := range rps {
			o := rpOut(rp, false)
			out.RecoveryPoints = append(out.RecoveryPoints, RecoveryPointByResourceOutput{RecoveryPointArn: rp.Arn,
				CreationDate: o.CreationDate, Status: rp.Status, StatusMessage: rp.StatusMessage, EncryptionKeyArn: rp.EncryptionKeyArn,
				BackupSizeBytes: rp.BackupSizeBytes, BackupVaultName: rp.VaultName, ResourceName: rp.ResourceName,
				VaultType: o.VaultType, EncryptionKeyType: o.EncryptionKeyType})
		}
		out.NextToken = s.pager.issue(id.AccountID, "ListRecoveryPointsByResource", q, next)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecoveryPointInput names one recovery point of a vault.
type RecoveryPointInput struct {
	BackupVaultName      string
	RecoveryPointArn     string
	BackupVaultAccountId *string
}

func rpNotFound(arn string) error {
	return &backup.Error{Code: backup.CodeNotFound, Message: "Recovery point " + truncate(arn, 300) + " does not exist", Context: arn}
}

// recoveryPointIn loads a recovery point that must be in the named vault.
func recoveryPointIn(ctx context.Context, tx store.Tx, id Identity, vault, arn string) (*backup.Vault, *backup.RecoveryPoint, error) {
	v, err := tx.GetVault(ctx, id.scope(), vault)
	if err != nil {
		return nil, nil, err
	}
	rp, err := tx.GetRecoveryPoint(ctx, id.scope(), arn)
	if backup.IsCode(err, backup.CodeNotFound) || (err == nil && rp.VaultName != v.Name) {
		return nil, nil, rpNotFound(arn)
	}
	return v, rp, err
}

func (s *Server) describeRecoveryPoint(ctx context.Context, id Identity, in *RecoveryPointInput) (*RecoveryPointOutput, error) {
	if in.BackupVaultAccountId != nil && *in.BackupVaultAccountId != id.AccountID {
		return nil, vaultNotFound(in.BackupVaultName)
	}
	var out RecoveryPointOutput
	err := s.deps.Store.Read(ctx, func(tx store.Tx) error {
		_, rp, err := recoveryPointIn(ctx, tx, id, in.BackupVaultName, in.RecoveryPointArn)
		if err != nil {
			return err
		}
		out = rpOut(rp, true)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// lockRefusesDelete reports why a vault lock forbids deleting rp at now.
func lockRefusesDelete(v *backup.Vault, rp *backup.RecoveryPoint, now time.Time) string {
	if !v.Locked || v.MinRetentionDays == nil {
		return ""
	}
	until := rp.CreationDate.Add(time.Duration(*v.MinRetentionDays) * 24 * time.Hour)
	if now.Before(until) {
		return fmt.Sprintf("Recovery point %s is protected by the lock of vault %s (minimum retention %d days) until %s",
			rp.Arn, v.Name, *v.MinRetentionDays, until.Format(time.RFC3339))
	}
	return ""
}

func (s *Server) deleteRecoveryPoint(ctx context.Context, id Identity, in *RecoveryPointInput) (*struct{}, error) {
	var vault *backup.Vault
	var manifest string
	err := s.deps.Store.Write(ctx, func(tx store.Tx) error {
		v, rp, err := recoveryPointIn(ctx, tx, id, in.BackupVaultName, in.RecoveryPointArn)
		if err != nil {
			return err
		}
		if why := lockRefusesDelete(v, rp, s.deps.Clock.Now()); why != "" {
			return &backup.Error{Code: backup.CodeInvalidRequest, Message: why, Context: rp.Arn}
		}
		user, err := jobInUse(ctx, tx, id.scope(), rp.Arn)
		if err != nil {
			return err
		}
		if user != "" {
			return &backup.Error{Code: backup.CodeInvalidState, Context: rp.Arn,
				Message: "Recovery point " + rp.Arn + " is in use by " + user}
		}
		vault, manifest = v, rp.ManifestID
		return tx.DeleteRecoveryPoint(ctx, id.scope(), rp.Arn)
	})
	if err != nil {
		return nil, err
	}
	// The row is gone; now drop the manifest so that prune reclaims the
	// data. If this fails the manifest is an orphan that the sweeper's
	// orphan pass removes.
	if s.deps.RecoveryPointData != nil && manifest != "" {
		if err := s.deps.RecoveryPointData.DeleteRecoveryPointData(ctx, vault, manifest); err != nil {
			s.log.Warn("recovery point data not deleted; left to the sweeper", "arn", in.RecoveryPointArn, "err", err)
		}
	}
	return nil, nil
}

// UpdateRecoveryPointLifecycleInput is the validated input.
type UpdateRecoveryPointLifecycleInput struct {
	BackupVaultName  string
	RecoveryPointArn string
	Lifecycle        *LifecycleInput
}

// UpdateRecoveryPointLifecycleOutput is its output.
type UpdateRecoveryPointLifecycleOutput struct {
	BackupVaultArn      string                     `json:",omitempty"`
	RecoveryPointArn    string                     `json:",omitempty"`
	Lifecycle           *LifecycleInput            `json:",omitempty"`
	CalculatedLifecycle *CalculatedLifecycleOutput `json:",omitempty"`
}

func (s *Server) updateRecoveryPointLifecycle(ctx context.Context, id Identity, in *UpdateRecoveryPointLifecycleInput) (*UpdateRecoveryPointLifecycleOutput, error) {
	lc, err := in.Lifecycle.toDomain("Lifecycle")
	if err != nil {
		return nil, err
	}
	var out *UpdateRecoveryPointLifecycleOutput
	err = s.deps.Store.Write(ctx, func(tx store.Tx) error {
		v, rp, err := recoveryPointIn(ctx, tx, id, in.BackupVaultName, in.RecoveryPointArn)
		if err != nil {
			return err
		}
		if err := backupjob.CheckLock(v, lc); err != nil {
			return &backup.Error{Code: backup.CodeInvalidRequest, Message: "Lifecycle not allowed: " + err.Error(), Context: rp.Arn}
		}
		if rp.StorageClass == "COLD" && !sameDays(rp.Lifecycle.MoveToColdStorageAfterDays, lc.MoveToColdStorageAfterDays) {
			return &backup.Error{Code: backup.CodeInvalidRequest, Context: rp.Arn,
				Message: "MoveToColdStorageAfterDays cannot change after the recovery point moved to cold storage"}
		}
		rp.Lifecycle = lc
		rp.MoveToColdStorageAt, rp.DeleteAt = backupjob.CalculatedLifecycle(rp.CreationDate, lc)
		if err := tx.UpdateRecoveryPoint(ctx, rp); err != nil {
			return err
		}
		out = &UpdateRecoveryPointLifecycleOutput{BackupVaultArn: v.Arn, RecoveryPointArn: rp.Arn, Lifecycle: lifecycleOut(lc),
			CalculatedLifecycle: calculated(rp)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func sameDays(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
