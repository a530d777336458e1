package api

import (
	"context"

	"coffer/internal/backup"
)

// ProtectedResourceOutput is the wire ProtectedResource (DescribeProtectedResource
// adds the LatestRestore* members).
type ProtectedResourceOutput struct {
	ResourceArn                            string     `json:",omitempty"`
	ResourceType                           string     `json:",omitempty"`
	LastBackupTime                         *Timestamp `json:",omitempty"`
	ResourceName                           string     `json:",omitempty"`
	LastBackupVaultArn                     string     `json:",omitempty"`
	LastRecoveryPointArn                   string     `json:",omitempty"`
	LatestRestoreExecutionTimeMinutes      *int64     `json:",omitempty"`
	LatestRestoreJobCreationDate           *Timestamp `json:",omitempty"`
	LatestRestoreRecoveryPointCreationDate *Timestamp `json:",omitempty"`
}

func protectedOut(r *backup.ProtectedResource) ProtectedResourceOutput {
	return ProtectedResourceOutput{ResourceArn: r.ResourceArn, ResourceType: r.ResourceType, LastBackupTime: tsp(r.LastBackupTime),
		ResourceName: r.ResourceName, LastBackupVaultArn: r.LastBackupVaultArn, LastRecoveryPointArn: r.LastRecoveryPointArn}
}

// ListProtectedResourcesInput is the validated input.
type ListProtectedResourcesInput struct {
	NextToken  *string
	MaxResults *int64
}

// ListProtectedResourcesOutput is its output.
type ListProtectedResourcesOutput struct {
	Results   []ProtectedResourceOutput
	NextToken *string `json:",omitempty"`
}

func (s *Server) listProtectedResources(ctx context.Context, id Identity, in *ListProtectedResourcesInput) (*ListProtectedResourcesOutput, error) {
	pg, err := s.pager.page(id.AccountID, "ListProtectedResources", nil, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListProtectedResourcesOutput{Results: []ProtectedResourceOutput{}}
	rs, next, err := s.svc.ListProtectedResources(ctx, id.caller(), pg)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		out.Results = append(out.Results, protectedOut(r))
	}
	out.NextToken = s.pager.issue(id.AccountID, "ListProtectedResources", nil, next)
	return out, nil
}

// ResourceArnInput names one resource.
type ResourceArnInput struct {
	ResourceArn string
}

func (s *Server) describeProtectedResource(ctx context.Context, id Identity, in *ResourceArnInput) (*ProtectedResourceOutput, error) {
	r, err := s.svc.DescribeProtectedResource(ctx, id.caller(), in.ResourceArn)
	if err != nil {
		return nil, err
	}
	out := protectedOut(r.ProtectedResource)
	if lr := r.LatestRestore; lr != nil {
		m := lr.ExecutionTimeMinutes
		out.LatestRestoreExecutionTimeMinutes = &m
		out.LatestRestoreJobCreationDate = ts(lr.JobCreationDate)
		if !lr.RecoveryPointCreationDate.IsZero() {
			out.LatestRestoreRecoveryPointCreationDate = ts(lr.RecoveryPointCreationDate)
		}
	}
	return &out, nil
}

// ListProtectedResourcesByBackupVaultInput is the validated input.
type ListProtectedResourcesByBackupVaultInput struct {
	BackupVaultName      string
	BackupVaultAccountId *string
	NextToken            *string
	MaxResults           *int64
}

func (s *Server) listProtectedResourcesByBackupVault(ctx context.Context, id Identity, in *ListProtectedResourcesByBackupVaultInput) (*ListProtectedResourcesOutput, error) {
	if in.BackupVaultAccountId != nil && *in.BackupVaultAccountId != id.AccountID {
		return nil, vaultNotFound(in.BackupVaultName)
	}
	filter := struct{ Vault string }{in.BackupVaultName}
	pg, err := s.pager.page(id.AccountID, "ListProtectedResourcesByBackupVault", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	rs, next, err := s.svc.ListProtectedResourcesByVault(ctx, id.caller(), in.BackupVaultName, pg)
	if err != nil {
		return nil, err
	}
	out := &ListProtectedResourcesOutput{Results: []ProtectedResourceOutput{}, NextToken: s.pager.issue(id.AccountID, "ListProtectedResourcesByBackupVault", filter, next)}
	for _, r := range rs {
		out.Results = append(out.Results, protectedOut(r))
	}
	return out, nil
}
