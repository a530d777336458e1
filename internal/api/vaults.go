package api

import (
	"context"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// CreateBackupVaultInput is the validated input of CreateBackupVault.
type CreateBackupVaultInput struct {
	BackupVaultName  string
	BackupVaultTags  map[string]string
	EncryptionKeyArn *string
	CreatorRequestId *string
}

// CreateBackupVaultOutput is its output.
type CreateBackupVaultOutput struct {
	BackupVaultName string     `json:",omitempty"`
	BackupVaultArn  string     `json:",omitempty"`
	CreationDate    *Timestamp `json:",omitempty"`
}

func (s *Server) createBackupVault(ctx context.Context, id Identity, in *CreateBackupVaultInput) (*CreateBackupVaultOutput, error) {
	v, err := s.svc.CreateVault(ctx, id.caller(), service.CreateVaultRequest{Name: in.BackupVaultName, Tags: in.BackupVaultTags,
		EncryptionKeyArn: str(in.EncryptionKeyArn), CreatorRequestID: str(in.CreatorRequestId)})
	if err != nil {
		return nil, err
	}
	return &CreateBackupVaultOutput{BackupVaultName: v.Name, BackupVaultArn: v.Arn, CreationDate: ts(v.CreationDate)}, nil
}

// BackupVaultListMember is one vault in ListBackupVaults (and the common
// part of DescribeBackupVaultOutput).
type BackupVaultListMember struct {
	BackupVaultName        string     `json:",omitempty"`
	BackupVaultArn         string     `json:",omitempty"`
	VaultType              string     `json:",omitempty"`
	VaultState             string     `json:",omitempty"`
	CreationDate           *Timestamp `json:",omitempty"`
	EncryptionKeyArn       string     `json:",omitempty"`
	CreatorRequestId       string     `json:",omitempty"`
	NumberOfRecoveryPoints int64
	Locked                 bool
	MinRetentionDays       *int64     `json:",omitempty"`
	MaxRetentionDays       *int64     `json:",omitempty"`
	LockDate               *Timestamp `json:",omitempty"`
	EncryptionKeyType      string     `json:",omitempty"`
}

func vaultMember(v *backup.Vault, n int64) BackupVaultListMember {
	m := BackupVaultListMember{BackupVaultName: v.Name, BackupVaultArn: v.Arn, VaultType: v.VaultType, VaultState: v.VaultState,
		CreationDate: ts(v.CreationDate), EncryptionKeyArn: v.EncryptionKeyArn, CreatorRequestId: v.CreatorRequestID,
		NumberOfRecoveryPoints: n, Locked: v.Locked, MinRetentionDays: v.MinRetentionDays, MaxRetentionDays: v.MaxRetentionDays,
		LockDate: tsp(v.LockDate), EncryptionKeyType: backup.EncryptionAWSOwned}
	if v.EncryptionKeyArn != "" {
		m.EncryptionKeyType = backup.EncryptionCustomerKey
	}
	return m
}

// DescribeBackupVaultInput is the validated input of DescribeBackupVault.
type DescribeBackupVaultInput struct {
	BackupVaultName      string
	BackupVaultAccountId *string
}

func (s *Server) describeBackupVault(ctx context.Context, id Identity, in *DescribeBackupVaultInput) (*BackupVaultListMember, error) {
	if in.BackupVaultAccountId != nil && *in.BackupVaultAccountId != id.AccountID {
		// Vaults of other accounts are never visible: identical to missing.
		return nil, vaultNotFound(in.BackupVaultName)
	}
	v, err := s.svc.DescribeVault(ctx, id.caller(), in.BackupVaultName)
	if err != nil {
		return nil, err
	}
	out := vaultMember(v.Vault, v.RecoveryPoints)
	return &out, nil
}

func vaultNotFound(name string) error {
	return &backup.Error{Code: backup.CodeNotFound, Message: "Backup vault " + name + " does not exist", Context: name}
}

// ListBackupVaultsInput is the validated input of ListBackupVaults.
type ListBackupVaultsInput struct {
	ByVaultType *string
	ByShared    *bool
	NextToken   *string
	MaxResults  *int64
}

// ListBackupVaultsOutput is its output.
type ListBackupVaultsOutput struct {
	BackupVaultList []BackupVaultListMember
	NextToken       *string `json:",omitempty"`
}

func (s *Server) listBackupVaults(ctx context.Context, id Identity, in *ListBackupVaultsInput) (*ListBackupVaultsOutput, error) {
	filter := struct {
		VaultType string
		Shared    *bool
	}{Shared: in.ByShared}
	if in.ByVaultType != nil {
		filter.VaultType = *in.ByVaultType
	}
	pg, err := s.pager.page(id.AccountID, "ListBackupVaults", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListBackupVaultsOutput{BackupVaultList: []BackupVaultListMember{}}
	if in.ByShared != nil && *in.ByShared {
		// Coffer has no resource sharing between accounts, so no vault is
		// shared with the caller.
		return out, nil
	}
	vs, next, err := s.svc.ListVaults(ctx, id.caller(), service.VaultFilter{VaultType: filter.VaultType}, pg)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		out.BackupVaultList = append(out.BackupVaultList, vaultMember(v.Vault, v.RecoveryPoints))
	}
	out.NextToken = s.pager.issue(id.AccountID, "ListBackupVaults", filter, next)
	return out, nil
}

// VaultNameInput is the input of the operations that only name a vault.
type VaultNameInput struct {
	BackupVaultName string
}

func (s *Server) deleteBackupVault(ctx context.Context, id Identity, in *VaultNameInput) (*struct{}, error) {
	return nil, s.svc.DeleteVault(ctx, id.caller(), in.BackupVaultName)
}

// PutBackupVaultAccessPolicyInput is the validated input of PutBackupVaultAccessPolicy.
type PutBackupVaultAccessPolicyInput struct {
	BackupVaultName string
	Policy          *string
}

func (s *Server) putBackupVaultAccessPolicy(ctx context.Context, id Identity, in *PutBackupVaultAccessPolicyInput) (*struct{}, error) {
	if in.Policy == nil || *in.Policy == "" {
		return nil, missingParam("Policy")
	}
	return nil, s.svc.PutVaultAccessPolicy(ctx, id.caller(), in.BackupVaultName, *in.Policy)
}

// GetBackupVaultAccessPolicyOutput is the output of GetBackupVaultAccessPolicy.
type GetBackupVaultAccessPolicyOutput struct {
	BackupVaultName string
	BackupVaultArn  string
	Policy          string
}

func (s *Server) getBackupVaultAccessPolicy(ctx context.Context, id Identity, in *VaultNameInput) (*GetBackupVaultAccessPolicyOutput, error) {
	v, p, err := s.svc.VaultAccessPolicy(ctx, id.caller(), in.BackupVaultName)
	if err != nil {
		return nil, err
	}
	return &GetBackupVaultAccessPolicyOutput{BackupVaultName: v.Name, BackupVaultArn: v.Arn, Policy: p}, nil
}

func (s *Server) deleteBackupVaultAccessPolicy(ctx context.Context, id Identity, in *VaultNameInput) (*struct{}, error) {
	return nil, s.svc.DeleteVaultAccessPolicy(ctx, id.caller(), in.BackupVaultName)
}

// PutBackupVaultLockConfigurationInput is the validated input of PutBackupVaultLockConfiguration.
type PutBackupVaultLockConfigurationInput struct {
	BackupVaultName   string
	MinRetentionDays  *int64
	MaxRetentionDays  *int64
	ChangeableForDays *int64
}

func (s *Server) putBackupVaultLockConfiguration(ctx context.Context, id Identity, in *PutBackupVaultLockConfigurationInput) (*struct{}, error) {
	return nil, s.svc.PutVaultLock(ctx, id.caller(), in.BackupVaultName, service.VaultLock{MinRetentionDays: in.MinRetentionDays,
		MaxRetentionDays: in.MaxRetentionDays, ChangeableForDays: in.ChangeableForDays})
}

func (s *Server) deleteBackupVaultLockConfiguration(ctx context.Context, id Identity, in *VaultNameInput) (*struct{}, error) {
	return nil, s.svc.DeleteVaultLock(ctx, id.caller(), in.BackupVaultName)
}

// GetSupportedResourceTypesOutput is the output of GetSupportedResourceTypes.
type GetSupportedResourceTypesOutput struct {
	ResourceTypes []string
}

func (s *Server) getSupportedResourceTypes(ctx context.Context, id Identity, in *struct{}) (*GetSupportedResourceTypesOutput, error) {
	return &GetSupportedResourceTypesOutput{ResourceTypes: s.svc.ResourceTypes()}, nil
}
