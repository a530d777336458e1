package service

import (
	"context"
	"fmt"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/store"
)

// Browsing recovery points and previewing restores are Coffer extensions
// (docs/design/browse.md): capabilities of the resource plugins
// (resource.Browser, resource.RestorePreviewer) that front ends reach
// through these use cases.

// BrowsePage, BrowseEntry and RestorePreview are the plugins' answers.
type (
	BrowsePage     = resource.BrowsePage
	BrowseEntry    = resource.Entry
	RestorePreview = resource.RestorePreview
)

// BrowseRequest lists a level of a recovery point or searches it (see
// resource.BrowseRequest for the fields' meaning per type).
type BrowseRequest struct {
	RecoveryPointArn string
	// VaultName, when set, is the vault the recovery point must be in.
	VaultName string
	Path      string
	Glob      string
	After     string
	Limit     int
}

// BrowseRecoveryPoint lists or searches one of the caller's COMPLETED
// recovery points. Another account's recovery point is NotFound, as one
// that does not exist.
func (s *Service) BrowseRecoveryPoint(ctx context.Context, c Caller, req BrowseRequest) (BrowsePage, error) {
	rp, vault, err := s.ownRecoveryPoint(ctx, c, req.RecoveryPointArn, req.VaultName)
	if err != nil {
		return BrowsePage{}, err
	}
	plugin, ok := s.plugins.Lookup(rp.ResourceType)
	if !ok {
		return BrowsePage{}, backup.Errorf(backup.CodeInvalidRequest, "Coffer cannot read recovery points of resource type %s", rp.ResourceType)
	}
	b, ok := plugin.(resource.Browser)
	if !ok {
		return BrowsePage{}, backup.Errorf(backup.CodeInvalidRequest, "recovery points of resource type %s cannot be browsed", rp.ResourceType)
	}
	if req.Limit < 0 || req.Limit > resource.MaxBrowseLimit {
		return BrowsePage{}, backup.InvalidParam("MaxResults", "MaxResults must be between 1 and %d", resource.MaxBrowseLimit)
	}
	snap, err := s.openSnapshot(ctx, vault, rp)
	if err != nil {
		return BrowsePage{}, err
	}
	return b.Browse(ctx, resource.BrowseRequest{Snapshot: snap, RecoveryPoint: rp, Path: req.Path, Glob: req.Glob,
		After: req.After, Limit: req.Limit})
}

// ownRecoveryPoint is one of the caller's restorable recovery points with
// its vault.
func (s *Service) ownRecoveryPoint(ctx context.Context, c Caller, arn, vaultName string) (*backup.RecoveryPoint, *backup.Vault, error) {
	if arn == "" {
		return nil, nil, backup.MissingParam("RecoveryPointArn")
	}
	_, account, _, ok := backup.ParseRecoveryPointArn(arn)
	if !ok {
		return nil, nil, backup.InvalidParam("RecoveryPointArn", "RecoveryPointArn is not a recovery point ARN (arn:aws:backup:<region>:<account>:recovery-point:<id>)")
	}
	notFound := backup.NotFound(arn, "Recovery point %s does not exist", arn)
	if account != c.AccountID {
		return nil, nil, notFound
	}
	var rp *backup.RecoveryPoint
	var vault *backup.Vault
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if rp, err = tx.GetRecoveryPoint(ctx, c.Scope(), arn); err != nil {
			return err
		}
		if vaultName != "" && rp.VaultName != vaultName {
			return notFound
		}
		vault, err = tx.GetVault(ctx, c.Scope(), rp.VaultName)
		return err
	})
	if backup.IsCode(err, backup.CodeNotFound) {
		return nil, nil, notFound
	}
	if err != nil {
		return nil, nil, err
	}
	if !rp.Status.Restorable() || rp.ManifestID == "" {
		return nil, nil, &backup.Error{Code: backup.CodeInvalidRequest, Context: rp.Arn,
			Message: fmt.Sprintf("Recovery point %s is %s; only a COMPLETED recovery point can be browsed", rp.Arn, rp.Status)}
	}
	return rp, vault, nil
}

// PreviewRestore answers a StartRestore request with what the restore
// would create, replace and keep: the same validation as StartRestore
// (same errors), then the plugin's dry run. Nothing is written and no job
// is created. maxPaths bounds the paths listed of each kind.
func (s *Service) PreviewRestore(ctx context.Context, c Caller, req StartRestoreRequest, maxPaths int) (RestorePreview, error) {
	if maxPaths < 0 || maxPaths > resource.MaxPreviewPaths {
		return RestorePreview{}, backup.InvalidParam("MaxPaths", "MaxPaths must be between 0 (default %d) and %d", resource.DefaultPreviewPaths, resource.MaxPreviewPaths)
	}
	rs, err := s.resolveRestore(ctx, c, req)
	if err != nil {
		return RestorePreview{}, err
	}
	pv, ok := rs.plugin.(resource.RestorePreviewer)
	if !ok {
		return RestorePreview{}, backup.Errorf(backup.CodeInvalidRequest, "restores of resource type %s cannot be previewed", rs.rp.ResourceType)
	}
	sc := c.Scope()
	var snap *resource.Snapshot
	open := func(ctx context.Context) (resource.Snapshot, error) {
		if snap == nil {
			s, err := s.openSnapshot(ctx, rs.vault, rs.rp)
			if err != nil {
				return s, err
			}
			snap = &s
		}
		return *snap, nil
	}
	lookup := resourceLookup{st: s.st, sc: sc}
	if err := rs.plugin.CheckRestore(ctx, resource.RestoreCheck{Scope: resource.Scope{AccountID: c.AccountID, Region: c.Region},
		Spec: rs.spec, RecoveryPoint: rs.rp, Resources: lookup, JobID: backup.NewJobID(), Snapshot: open}); err != nil {
		return RestorePreview{}, err
	}
	var target *backup.Resource
	if !rs.spec.Target.New {
		if target, err = lookup.GetResource(ctx, rs.rp.ResourceType, rs.spec.Target.ID); err != nil {
			return RestorePreview{}, err
		}
	}
	sn, err := open(ctx)
	if err != nil {
		return RestorePreview{}, err
	}
	return pv.PreviewRestore(ctx, resource.PreviewRequest{Scope: resource.Scope{AccountID: c.AccountID, Region: c.Region},
		Spec: rs.spec, RecoveryPoint: rs.rp, Snapshot: sn, Target: target, MaxPaths: maxPaths, Created: s.clk.Now().UTC()})
}

// Resources lists the caller's resources of every registered type
// (configured or created by restores), by type then id; the console
// offers them for backups.
func (s *Service) Resources(ctx context.Context, c Caller) ([]*backup.Resource, error) {
	var out []*backup.Resource
	err := s.st.Read(ctx, func(tx store.Tx) error {
		for _, typ := range s.plugins.Types() {
			rs, err := tx.ListResources(ctx, c.Scope(), typ)
			if err != nil {
				return err
			}
			out = append(out, rs...)
		}
		return nil
	})
	return out, err
}
