package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

var (
	kmsKeyArnRE        = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}$`)
	creatorRequestIDRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,50}$`)
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

func validateTags(tags map[string]string) error {
	if len(tags) > backup.MaxTagsPerResource {
		return &Error{Status: http.StatusBadRequest, Code: excLimitExceeded, Context: "Tags",
			Message: fmt.Sprintf("a resource can have at most %d tags", backup.MaxTagsPerResource)}
	}
	for k, v := range tags {
		if k == "" || len([]rune(k)) > 128 {
			return invalidParam("Tags", "Tag keys must have 1 to 128 characters")
		}
		if len([]rune(v)) > 256 {
			return invalidParam("Tags", "Tag value for %q exceeds 256 characters", k)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return invalidParam("Tags", "Tag keys starting with \"aws:\" are reserved")
		}
	}
	return nil
}

func (s *Server) createBackupVault(ctx context.Context, id Identity, in *CreateBackupVaultInput) (*CreateBackupVaultOutput, error) {
	v := &backup.Vault{AccountID: id.AccountID, Region: id.Region, Name: in.BackupVaultName,
		Arn: backup.VaultArn(id.Region, id.AccountID, in.BackupVaultName), VaultType: backup.VaultTypeBackup,
		VaultState: backup.VaultStateAvailable, CreationDate: s.deps.Clock.Now()}
	if in.EncryptionKeyArn != nil {
		if !kmsKeyArnRE.MatchString(*in.EncryptionKeyArn) {
			return nil, invalidParam("EncryptionKeyArn", "EncryptionKeyArn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not %q", *in.EncryptionKeyArn)
		}
		v.EncryptionKeyArn = *in.EncryptionKeyArn
	}
	if in.CreatorRequestId != nil {
		if !creatorRequestIDRE.MatchString(*in.CreatorRequestId) {
			return nil, invalidParam("CreatorRequestId", "CreatorRequestId must be 1 to 50 characters of A-Za-z0-9-_.")
		}
		v.CreatorRequestID = *in.CreatorRequestId
	}
	if err := validateTags(in.BackupVaultTags); err != nil {
		return nil, err
	}
	var out *CreateBackupVaultOutput
	err := s.deps.Store.Write(ctx, func(tx store.Tx) error {
		if old, err := tx.GetVault(ctx, id.scope(), v.Name); err == nil {
			if v.CreatorRequestID != "" && old.CreatorRequestID == v.CreatorRequestID {
				out = &CreateBackupVaultOutput{BackupVaultName: old.Name, BackupVaultArn: old.Arn, CreationDate: ts(old.CreationDate)}
				return nil
			}
		} else if !backup.IsCode(err, backup.CodeNotFound) {
			return err
		}
		if err := tx.CreateVault(ctx, v); err != nil {
			return err
		}
		if len(in.BackupVaultTags) > 0 {
			if err := tx.PutTags(ctx, v.Arn, in.BackupVaultTags); err != nil {
				return err
			}
		}
		if s.deps.VaultStorage != nil {
			if err := s.deps.VaultStorage.CreateVaultStorage(ctx, v); err != nil {
				return fmt.Errorf("create storage of vault %s: %w", v.Name, err)
			}
		}
		out = &CreateBackupVaultOutput{BackupVaultName: v.Name, BackupVaultArn: v.Arn, CreationDate: ts(v.CreationDate)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
	var out BackupVaultListMember
	err := s.deps.Store.Read(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, id.scope(), in.BackupVaultName)
		if err != nil {
			return err
		}
		n, err := tx.CountRecoveryPoints(ctx, id.scope(), v.Name)
		if err != nil {
			return err
		}
		out = vaultMember(v, n)
		return nil
	})
	if err != nil {
		return nil, err
	}
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
	err = s.deps.Store.Read(ctx, func(tx store.Tx) error {
		vs, next, err := tx.ListVaults(ctx, id.scope(), store.VaultFilter{VaultType: filter.VaultType}, pg)
		if err != nil {
			return err
		}
		for _, v := range vs {
			n, err := tx.CountRecoveryPoints(ctx, id.scope(), v.Name)
			if err != nil {
				return err
			}
			out.BackupVaultList = append(out.BackupVaultList, vaultMember(v, n))
		}
		out.NextToken = s.pager.issue(id.AccountID, "ListBackupVaults", filter, next)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// VaultNameInput is the input of the operations that only name a vault.
type VaultNameInput struct {
	BackupVaultName string
}

func (s *Server) deleteBackupVault(ctx context.Context, id Identity, in *VaultNameInput) (*struct{}, error) {
	err := s.deps.Store.Write(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, id.scope(), in.BackupVaultName)
		if err != nil {
			return err
		}
		if err := tx.DeleteVault(ctx, id.scope(), v.Name); err != nil { // refuses non-empty vaults, drops tags
			return err
		}
		if s.deps.VaultStorage != nil {
			if err := s.deps.VaultStorage.DeleteVaultStorage(ctx, v); err != nil {
				return fmt.Errorf("delete storage of vault %s: %w", v.Name, err)
			}
		}
		return nil
	})
	return nil, err
}

// PutBackupVaultAccessPolicyInput is the validated input of PutBackupVaultAccessPolicy.
type PutBackupVaultAccessPolicyInput struct {
	BackupVaultName string
	Policy          *string
}

// validatePolicy checks that p is an IAM policy document: a JSON object
// with Version and a non-empty Statement list (or a single statement
// object) whose items have Effect Allow|Deny, Action (or NotAction) and a
// Principal (or NotPrincipal) or Resource.
func validatePolicy(p string) error {
	bad := func(format string, args ...any) error {
		return invalidParam("Policy", "Invalid policy: "+format, args...)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(p), &doc); err != nil {
		return bad("not a JSON object")
	}
	var version string
	if raw, ok := doc["Version"]; !ok || json.Unmarshal(raw, &version) != nil || version == "" {
		return bad("Version must be a non-empty string")
	}
	raw, ok := doc["Statement"]
	if !ok {
		return bad("Statement is missing")
	}
	var stmts []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &stmts); err != nil {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw, &one); err != nil {
			return bad("Statement must be a list of objects")
		}
		stmts = []map[string]json.RawMessage{one}
	}
	if len(stmts) == 0 {
		return bad("Statement must not be empty")
	}
	for i, st := range stmts {
		var effect string
		if raw, ok := st["Effect"]; !ok || json.Unmarshal(raw, &effect) != nil || (effect != "Allow" && effect != "Deny") {
			return bad("Statement[%d].Effect must be Allow or Deny", i)
		}
		if !present(st, "Action") && !present(st, "NotAction") {
			return bad("Statement[%d] needs Action", i)
		}
		if !present(st, "Principal") && !present(st, "NotPrincipal") && !present(st, "Resource") && !present(st, "NotResource") {
			return bad("Statement[%d] needs Principal or Resource", i)
		}
	}
	return nil
}

func present(m map[string]json.RawMessage, k string) bool {
	raw, ok := m[k]
	return ok && len(raw) > 0 && string(raw) != "null" && string(raw) != `""` && string(raw) != "[]"
}

func (s *Server) putBackupVaultAccessPolicy(ctx context.Context, id Identity, in *PutBackupVaultAccessPolicyInput) (*struct{}, error) {
	if in.Policy == nil || *in.Policy == "" {
		return nil, missingParam("Policy")
	}
	if err := validatePolicy(*in.Policy); err != nil {
		return nil, err
	}
	return nil, s.deps.Store.Write(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, id.scope(), in.BackupVaultName)
		if err != nil {
			return err
		}
		p := *in.Policy
		v.AccessPolicy = &p
		return tx.UpdateVault(ctx, v)
	})
}

// GetBackupVaultAccessPolicyOutput is the output of GetBackupVaultAccessPolicy.
type GetBackupVaultAccessPolicyOutput struct {
	BackupVaultName string
	BackupVaultArn  string
	Policy          string
}

func (s *Server) getBackupVaultAccessPolicy(ctx context.Context, id Identity, in *VaultNameInput) (*GetBackupVaultAccessPolicyOutput, error) {
	var out *GetBackupVaultAccessPolicyOutput
	err := s.deps.Store.Read(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, id.scope(), in.BackupVaultName)
		if err != nil {
			return err
		}
		if v.AccessPolicy == nil {
			return &backup.Error{Code: backup.CodeNotFound, Message: "Backup vault " + v.Name + " has no access policy", Context: v.Name}
		}
		out = &GetBackupVaultAccessPolicyOutput{BackupVaultName: v.Name, BackupVaultArn: v.Arn, Policy: *v.AccessPolicy}
		return nil
	})
	return out, err
}

func (s *Server) deleteBackupVaultAccessPolicy(ctx context.Context, id Identity, in *VaultNameInput) (*struct{}, error) {
	return nil, s.deps.Store.Write(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, id.scope(), in.BackupVaultName)
		if err != nil {
			return err
		}
		if v.AccessPolicy == nil {
			return nil
		}
		v.AccessPolicy = nil
		return tx.UpdateVault(ctx, v)
	})
}

// PutBackupVaultLockConfigurationInput is the validated input of PutBackupVaultLockConfiguration.
type PutBackupVaultLockConfigurationInput struct {
	BackupVaultName   string
	MinRetentionDays  *int64
	MaxRetentionDays  *int64
	ChangeableForDays *int64
}

func immutableLock(v *backup.Vault, now time.Time) bool {
	return v.Locked && v.LockDate != nil && !now.Before(*v.LockDate)
}

func (s *Server) putBackupVaultLockConfiguration(ctx context.Context, id Identity, in *PutBackupVaultLockConfigurationInput) (*struct{}, error) {
	if in.MinRetentionDays != nil && (*in.MinRetentionDays < 1 || *in.MinRetentionDays > backup.MaxRetentionDays) {
		return nil, invalidParam("MinRetentionDays", "MinRetentionDays must be between 1 and %d", backup.MaxRetentionDays)
	}
	if in.MaxRetentionDays != nil && (*in.MaxRetentionDays < 1 || *in.MaxRetentionDays > backup.MaxRetentionDays) {
		return nil, invalidParam("MaxRetentionDays", "MaxRetentionDays must be between 1 and %d", backup.MaxRetentionDays)
	}
	if in.MinRetentionDays != nil && in.MaxRetentionDays != nil && *in.MinRetentionDays > *in.MaxRetentionDays {
		return nil, invalidParam("MinRetentionDays", "MinRetentionDays must not be greater than MaxRetentionDays")
	}
	if in.ChangeableForDays != nil && (*in.ChangeableForDays < backup.MinChangeableForDays || *in.ChangeableForDays > backup.MaxRetentionDays) {
		return nil, invalidParam("ChangeableForDays", "ChangeableForDays must be between %d and %d", backup.MinChangeableForDays, backup.MaxRetentionDays)
	}
	now := s.deps.Clock.Now()
	return nil, s.deps.Store.Write(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, id.scope(), in.BackupVaultName)
		if err != nil {
			return err
		}
		if immutableLock(v, now) {
			return &backup.Error{Code: backup.CodeInvalidRequest, Context: v.Name,
				Message: "The vault lock configuration of " + v.Name + " is immutable since its lock date"}
		}
		v.Locked, v.MinRetentionDays, v.MaxRetentionDays, v.LockDate = true, in.MinRetentionDays, in.MaxRetentionDays, nil
		if in.ChangeableForDays != nil {
			ld := now.Add(time.Duration(*in.ChangeableForDays) * 24 * time.Hour)
			v.LockDate = &ld
		}
		return tx.UpdateVault(ctx, v)
	})
}

func (s *Server) deleteBackupVaultLockConfiguration(ctx context.Context, id Identity, in *VaultNameInput) (*struct{}, error) {
	now := s.deps.Clock.Now()
	return nil, s.deps.Store.Write(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, id.scope(), in.BackupVaultName)
		if err != nil {
			return err
		}
		if immutableLock(v, now) {
			return &backup.Error{Code: backup.CodeInvalidRequest, Context: v.Name,
				Message: "The vault lock configuration of " + v.Name + " is immutable since its lock date and cannot be deleted"}
		}
		v.Locked, v.MinRetentionDays, v.MaxRetentionDays, v.LockDate = false, nil, nil, nil
		return tx.UpdateVault(ctx, v)
	})
}

// GetSupportedResourceTypesOutput is the output of GetSupportedResourceTypes.
type GetSupportedResourceTypesOutput struct {
	ResourceTypes []string
}

func (s *Server) getSupportedResourceTypes(ctx context.Context, id Identity, in *struct{}) (*GetSupportedResourceTypesOutput, error) {
	return &GetSupportedResourceTypesOutput{ResourceTypes: append([]string(nil), s.cfg.ResourceTypes...)}, nil
}
