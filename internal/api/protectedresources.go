package api

import (
	"context"

	"coffer/internal/backup"
	"coffer/internal/store"
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
	err = s.deps.Store.Read(ctx, func(tx store.Tx) error {
		rs, next, err := tx.ListProtectedResources(ctx, id.scope(), pg)
		if err != nil {
			return err
		}
		for _, r := range rs {
			out.Results = append(out.Results, protectedOut(r))
		}
		out.NextToken = s.pager.issue(id.AccountID, "ListProtectedResources", nil, next)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ResourceArnInput names one resource.
type ResourceArnInput struct {
	ResourceArn string
}

func (s *Server) describeProtectedResource(ctx context.Context, id Identity, in *ResourceArnInput) (*ProtectedResourceOutput, error) {
	var out ProtectedResourceOutput
	err := s.deps.Store.Read(ctx, func(tx store.Tx) error {
		r, err := tx.GetProtectedResource(ctx, id.scope(), in.ResourceArn)
		if err != nil {
			return err
		}
		out = protectedOut(r)
		// The latest completed restore, recorded by the restore's completing
		// transaction (jobs still running, failed or aborted do not count).
		lr, err := tx.GetLatestRestore(ctx, id.scope(), r.ResourceArn)
		if backup.IsCode(err, backup.CodeNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		m := lr.ExecutionTimeMinutes
		out.LatestRestoreExecutionTimeMinutes = &m
		out.LatestRestoreJobCreationDate = ts(lr.JobCreationDate)
		if !lr.RecoveryPointCreationDate.IsZero() {
			out.LatestRestoreRecoveryPointCreationDate = ts(lr.RecoveryPointCreationDate)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
