package service

import (
	"context"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// ProtectedResourceInfo is a protected resource with its latest restore
// (nil when none completed).
type ProtectedResourceInfo struct {
	*backup.ProtectedResource
	LatestRestore *store.LatestRestore
}

// ListProtectedResources lists one page of the caller's protected
// resources.
func (s *Service) ListProtectedResources(ctx context.Context, c Caller, p Page) ([]*backup.ProtectedResource, string, error) {
	var rs []*backup.ProtectedResource
	var next string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		rs, next, err = tx.ListProtectedResources(ctx, c.Scope(), p)
		return err
	})
	return rs, next, err
}

// DescribeProtectedResource returns a protected resource of the caller.
func (s *Service) DescribeProtectedResource(ctx context.Context, c Caller, arn string) (ProtectedResourceInfo, error) {
	var out ProtectedResourceInfo
	err := s.st.Read(ctx, func(tx store.Tx) error {
		r, err := tx.GetProtectedResource(ctx, c.Scope(), arn)
		if err != nil {
			return err
		}
		out.ProtectedResource = r
		// The latest completed restore, recorded by the restore's
		// completing transaction (jobs still running, failed or aborted do
		// not count).
		lr, err := tx.GetLatestRestore(ctx, c.Scope(), r.ResourceArn)
		if backup.IsCode(err, backup.CodeNotFound) {
			return nil
		}
		out.LatestRestore = lr
		return err
	})
	return out, err
}

// ListProtectedResourcesByVault lists one page of the resources that have
// recovery points in a vault of the caller, each with its latest one
// there, by ARN.
func (s *Service) ListProtectedResourcesByVault(ctx context.Context, c Caller, vault string, p Page) ([]*backup.ProtectedResource, string, error) {
	var rs []*backup.ProtectedResource
	var next string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		if _, err := tx.GetVault(ctx, c.Scope(), vault); err != nil {
			return err
		}
		var err error
		rs, next, err = tx.ListProtectedResourcesByVault(ctx, c.Scope(), vault, p)
		return err
	})
	return rs, next, err
}
