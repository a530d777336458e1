package api

import (
	"context"
	"encoding/json"

	"coffer/internal/backup"
	"coffer/internal/service"
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
	// CreatedBy names the plan and rule of a scheduled backup's recovery
	// point (absent for on-demand backups).
	CreatedBy json.RawMessage `json:",omitempty"`
}

// createdBy is a job's or recovery point's RecoveryPointCreator as wire
// JSON (nil when there is none).
func createdBy(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return nil
	}
	return json.RawMessage(s)
}

func rpOut(rp *backup.RecoveryPoint, withClass bool) RecoveryPointOutput {
	o := RecoveryPointOutput{RecoveryPointArn: rp.Arn, BackupVaultName: rp.VaultName, BackupVaultArn: rp.VaultArn,
		SourceBackupVaultArn: rp.SourceVaultArn, ResourceArn: rp.ResourceArn, ResourceType: rp.ResourceType, IamRoleArn: rp.IamRoleArn,
		Status: string(rp.Status), StatusMessage: rp.StatusMessage, CreationDate: ts(rp.CreationDate), InitiationDate: tsp(rp.InitiationDate),
		CompletionDate: tsp(rp.CompletionDate), BackupSizeInBytes: rp.BackupSizeBytes, CalculatedLifecycle: calculated(rp),
		Lifecycle: lifecycleOut(rp.Lifecycle), EncryptionKeyArn: rp.EncryptionKeyArn, IsEncrypted: true,
		LastRestoreTime: tsp(rp.LastRestoreTime), ResourceName: rp.ResourceName, VaultType: backup.VaultTypeBackup,
		EncryptionKeyType: backup.EncryptionAWSOwned, CreatedBy: createdBy(rp.CreatedByJSON)}
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
	q := service.RecoveryPointQuery{VaultName: in.BackupVaultName, ResourceArn: str(in.ByResourceArn), ResourceType: str(in.ByResourceType),
		CreatedAfter: tptr(in.ByCreatedAfter), CreatedBefore: tptr(in.ByCreatedBefore), BackupPlanID: str(in.ByBackupPlanId)}
	filter := struct {
		Q      service.RecoveryPointQuery
		Plan   string
		Parent string
	}{q, str(in.ByBackupPlanId), str(in.ByParentRecoveryPointArn)}
	pg, err := s.pager.page(id.AccountID, "ListRecoveryPointsByBackupVault", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListRecoveryPointsByBackupVaultOutput{RecoveryPoints: []RecoveryPointOutput{}}
	if filter.Parent != "" {
		// Coffer's recovery points are never composite: none has a parent.
		if _, err := s.svc.DescribeVault(ctx, id.caller(), in.BackupVaultName); err != nil {
			return nil, err
		}
		return out, nil
	}
	rps, next, err := s.svc.ListRecoveryPoints(ctx, id.caller(), q, pg)
	if err != nil {
		return nil, err
	}
	for _, rp := range rps {
		out.RecoveryPoints = append(out.RecoveryPoints, rpOut(rp, false))
	}
	out.NextToken = s.pager.issue(id.AccountID, "ListRecoveryPointsByBackupVault", filter, next)
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
	q := service.RecoveryPointQuery{ResourceArn: in.ResourceArn}
	pg, err := s.pager.page(id.AccountID, "ListRecoveryPointsByResource", q, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListRecoveryPointsByResourceOutput{RecoveryPoints: []RecoveryPointByResourceOutput{}}
	rps, next, err := s.svc.ListRecoveryPoints(ctx, id.caller(), q, pg)
	if err != nil {
		return nil, err
	}
	{
		for _, rp := range rps {
			o := rpOut(rp, false)
			out.RecoveryPoints = append(out.RecoveryPoints, RecoveryPointByResourceOutput{RecoveryPointArn: rp.Arn,
				CreationDate: o.CreationDate, Status: string(rp.Status), StatusMessage: rp.StatusMessage, EncryptionKeyArn: rp.EncryptionKeyArn,
				BackupSizeBytes: rp.BackupSizeBytes, BackupVaultName: rp.VaultName, ResourceName: rp.ResourceName,
				VaultType: o.VaultType, EncryptionKeyType: o.EncryptionKeyType})
		}
		out.NextToken = s.pager.issue(id.AccountID, "ListRecoveryPointsByResource", q, next)
	}
	return out, nil
}

// RecoveryPointInput names one recovery point of a vault.
type RecoveryPointInput struct {
	BackupVaultName      string
	RecoveryPointArn     string
	BackupVaultAccountId *string
}

func (s *Server) describeRecoveryPoint(ctx context.Context, id Identity, in *RecoveryPointInput) (*RecoveryPointOutput, error) {
	if in.BackupVaultAccountId != nil && *in.BackupVaultAccountId != id.AccountID {
		return nil, vaultNotFound(in.BackupVaultName)
	}
	rp, err := s.svc.DescribeRecoveryPoint(ctx, id.caller(), in.BackupVaultName, in.RecoveryPointArn)
	if err != nil {
		return nil, err
	}
	out := rpOut(rp, true)
	return &out, nil
}

func (s *Server) deleteRecoveryPoint(ctx context.Context, id Identity, in *RecoveryPointInput) (*struct{}, error) {
	return nil, s.svc.DeleteRecoveryPoint(ctx, id.caller(), in.BackupVaultName, in.RecoveryPointArn)
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
	v, rp, err := s.svc.UpdateRecoveryPointLifecycle(ctx, id.caller(), in.BackupVaultName, in.RecoveryPointArn, lc)
	if err != nil {
		return nil, err
	}
	return &UpdateRecoveryPointLifecycleOutput{BackupVaultArn: v.Arn, RecoveryPointArn: rp.Arn, Lifecycle: lifecycleOut(lc),
		CalculatedLifecycle: calculated(rp)}, nil
}
