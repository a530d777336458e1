package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/restorejob"
	"coffer/internal/store"
)

// StartRestoreRequest restores a recovery point. The restore is described
// either by AWS restore metadata (decoded by the resource type's plugin,
// errors naming the metadata keys) or by a typed spec (front ends without
// a metadata map); exactly one of Metadata and Spec is set.
type StartRestoreRequest struct {
	RecoveryPointArn string
	IamRoleArn       string // "" = the account's default service role
	IdempotencyToken string
	// ResourceType, when set, must be the recovery point's type.
	ResourceType   string
	CopySourceTags bool
	Metadata       map[string]string
	Spec           *backup.RestoreSpec
	// CreatedBy is the RestoreJobCreator (JSON); "" for an on-demand
	// restore.
	CreatedBy string
	// SourceAccount is the account whose recovery point is restored; ""
	// is the caller's. Another account's recovery point is restored only
	// when its vault's access policy allows the caller (see
	// crossaccount.go); the job belongs to the caller either way.
	SourceAccount string
	// VaultName, when set, is the vault the recovery point must be in.
	VaultName string
	// ManifestID, when set, must be the recovery point's snapshot (a
	// front end naming the snapshot by its content hash).
	ManifestID string
	// Labels are a front end's facts about the request, recorded with the
	// job for that front end to show back (e.g. HBR's RestoreType).
	Labels map[string]string
}

// StartRestore validates req in the documented order (see
// docs/design/restore.md) and creates the restore job (PENDING), or
// returns the job an earlier request with the same idempotency token and
// parameters created. Every error leaves nothing behind.
func (s *Service) StartRestore(ctx context.Context, c Caller, req StartRestoreRequest) (*backup.Job, error) {
	rs, err := s.resolveRestore(ctx, c, req)
	if err != nil {
		return nil, err
	}
	rp, vault, plugin, spec := rs.rp, rs.vault, rs.plugin, rs.spec
	sc := c.Scope()
	dreq := req
	dreq.IdempotencyToken = ""
	dig := digest(dreq)
	now := s.clk.Now().UTC()
	idem := idempotentRequest{op: OpStartRestore, token: req.IdempotencyToken, params: dreq, kind: backup.JobRestore,
		created: func(tx store.Tx, j *backup.Job) error {
			return tx.SetRestoreJobExtra(ctx, sc, j.ID, store.RestoreJobExtra{RecoveryPointCreationDate: rp.CreationDate, Labels: req.Labels})
		}}

	// A retried request gets its job back before anything else is checked
	// (the target may since have changed).
	var prev *backup.Job
	if err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		prev, err = replay(ctx, tx, sc, OpStartRestore, req.IdempotencyToken, dig, backup.JobRestore, now)
		return err
	}); err != nil {
		return nil, err
	}
	if prev != nil {
		return prev, nil
	}
	jobID := backup.NewJobID()
	check := resource.RestoreCheck{Scope: resource.Scope{AccountID: c.AccountID, Region: c.Region}, Spec: spec, RecoveryPoint: rp,
		Resources: resourceLookup{st: s.st, sc: sc}, JobID: jobID,
		Snapshot: func(ctx context.Context) (resource.Snapshot, error) { return s.openSnapshot(ctx, vault, rp) }}
	if err := plugin.CheckRestore(ctx, check); err != nil {
		return nil, err
	}
	ranWith := withCallerSpelling(req.Metadata, plugin.EncodeRestoreMetadata(rp, spec))
	role := req.IamRoleArn
	if role == "" {
		role = backup.DefaultServiceRole(c.AccountID)
	}
	pj, err := json.Marshal(restorejob.Params{Metadata: ranWith, CopySourceTags: req.CopySourceTags, ManifestID: rp.ManifestID, Spec: spec})
	if err != nil {
		return nil, err
	}
	job := &backup.Job{Kind: backup.JobRestore, ID: jobID, AccountID: c.AccountID, Region: c.Region, State: backup.JobPending,
		CreationDate: now, VaultName: rp.VaultName, VaultArn: rp.VaultArn, RecoveryPointArn: rp.Arn,
		ResourceArn: rp.ResourceArn, ResourceType: rp.ResourceType, ResourceName: rp.ResourceName, IamRoleArn: role,
		BackupSizeBytes: rp.BackupSizeBytes, PercentDone: "0.0", IdempotencyToken: req.IdempotencyToken, CreatedByJSON: req.CreatedBy,
		ParametersJSON: string(pj)}
	return s.createJob(ctx, sc, idem, now, func(store.Tx) (*backup.Job, error) { return job, nil })
}

// resolvedRestore is a validated restore request: the recovery point, its
// vault, its type's plugin and the restore spec.
type resolvedRestore struct {
	rp     *backup.RecoveryPoint
	vault  *backup.Vault
	plugin resource.Plugin
	spec   *backup.RestoreSpec
}

// resolveRestore validates req up to the plugin's checks (the part of
// StartRestore a dry run shares).
func (s *Service) resolveRestore(ctx context.Context, c Caller, req StartRestoreRequest) (*resolvedRestore, error) {
	if req.RecoveryPointArn == "" {
		return nil, backup.MissingParam("RecoveryPointArn")
	}
	if req.Metadata == nil && req.Spec == nil {
		return nil, backup.MissingParam("Metadata")
	}
	if req.Metadata != nil && req.Spec != nil {
		return nil, backup.InvalidParam("Metadata", "give the restore either as metadata or as a spec, not both")
	}
	if req.ResourceType != "" && !backup.ValidResourceTypeName(req.ResourceType) {
		return nil, backup.InvalidParam("ResourceType", "ResourceType must match ^[a-zA-Z0-9\\-\\_\\.]{1,50}$")
	}
	if req.IamRoleArn != "" && !backup.ValidIAMRoleArn(req.IamRoleArn) {
		return nil, backup.InvalidParam("IamRoleArn", "IamRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
	}
	region, account, _, ok := backup.ParseRecoveryPointArn(req.RecoveryPointArn)
	if !ok {
		return nil, backup.InvalidParam("RecoveryPointArn", "RecoveryPointArn is not a recovery point ARN (arn:aws:backup:<region>:<account>:recovery-point:<id>)")
	}
	notFound := backup.NotFound(req.RecoveryPointArn, "Recovery point %s does not exist", req.RecoveryPointArn)
	src, cross, err := restoreSource(c, req, region, account)
	if err != nil {
		return nil, err
	}
	var rp *backup.RecoveryPoint
	var vault *backup.Vault
	err = s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if cross {
			// Authorized first: nothing about another account's vaults
			// shows before its policy allows the caller.
			if vault, err = tx.GetVault(ctx, src, req.VaultName); err != nil && !backup.IsCode(err, backup.CodeNotFound) {
				return err
			}
			if err := authorizeCrossAccountRestore(c, src, req.VaultName, vault); err != nil {
				return err
			}
		}
		if rp, err = tx.GetRecoveryPoint(ctx, src, req.RecoveryPointArn); err != nil {
			return err
		}
		if req.VaultName != "" && rp.VaultName != req.VaultName {
			return notFound
		}
		vault, err = tx.GetVault(ctx, src, rp.VaultName)
		return err
	})
	if backup.IsCode(err, backup.CodeNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if req.ManifestID != "" && req.ManifestID != rp.ManifestID {
		return nil, backup.InvalidParam("ManifestID", "the snapshot hash does not match recovery point %s", rp.Arn)
	}
	if !rp.Status.Restorable() {
		return nil, &backup.Error{Code: backup.CodeInvalidRequest, Context: rp.Arn,
			Message: fmt.Sprintf("Recovery point %s is %s; only a COMPLETED recovery point can be restored", rp.Arn, rp.Status)}
	}
	if req.ResourceType != "" && req.ResourceType != rp.ResourceType {
		return nil, backup.InvalidParam("ResourceType", "ResourceType %s does not match the recovery point's resource type %s", req.ResourceType, rp.ResourceType)
	}
	plugin, ok := s.plugins.Lookup(rp.ResourceType)
	if !ok {
		return nil, backup.InvalidParam("ResourceType", "Coffer cannot restore recovery points of resource type %s", rp.ResourceType)
	}
	spec := req.Spec
	if req.Metadata != nil {
		if spec, err = plugin.DecodeRestoreMetadata(req.Metadata); err != nil {
			return nil, err
		}
	} else if err := checkCapabilities(plugin, spec); err != nil {
		return nil, err
	}
	if rp.ManifestID == "" {
		return nil, &backup.Error{Code: backup.CodeInvalidRequest, Context: rp.Arn, Message: "Recovery point " + rp.Arn + " has no stored snapshot"}
	}
	return &resolvedRestore{rp: rp, vault: vault, plugin: plugin, spec: spec}, nil
}

// checkCapabilities rejects a typed spec the resource type cannot carry
// out (a metadata map is checked by the plugin's decoder).
func checkCapabilities(p resource.Plugin, spec *backup.RestoreSpec) error {
	caps := p.Capabilities()
	switch {
	case spec.Target.New && !caps.NewTarget:
		return backup.InvalidParam("Target", "resource type %s cannot restore to a new resource", p.Type())
	case !spec.Target.New && !caps.ExistingTarget:
		return backup.InvalidParam("Target", "resource type %s cannot restore into an existing resource", p.Type())
	case spec.Target.Path != "" && !caps.TargetPath:
		return backup.InvalidParam("TargetPath", "resource type %s has no target path", p.Type())
	case len(spec.Items) > 0 && !caps.Items:
		return backup.InvalidParam("Items", "resource type %s cannot restore single items", p.Type())
	case (len(spec.Include) > 0 || len(spec.Exclude) > 0) && !caps.Patterns:
		return backup.InvalidParam("Include", "resource type %s cannot filter a restore by patterns", p.Type())
	}
	if spec.ConflictPolicy != backup.ConflictDefault {
		for _, cp := range caps.ConflictPolicies {
			if cp == spec.ConflictPolicy {
				return nil
			}
		}
		return backup.InvalidParam("ConflictPolicy", "conflict policy %q is not supported for resource type %s", backup.Truncate(string(spec.ConflictPolicy), 40), p.Type())
	}
	return nil
}

// withCallerSpelling returns the metadata a job runs with: the caller's
// keys in the caller's spelling, plus every key of encoded the caller did
// not send (defaults the service applied). With no caller map it is
// encoded.
func withCallerSpelling(caller, encoded map[string]string) map[string]string {
	if caller == nil {
		return encoded
	}
	out := make(map[string]string, len(caller)+len(encoded))
	has := map[string]bool{}
	for k, v := range caller {
		out[k] = v
		has[strings.ToLower(k)] = true
	}
	for k, v := range encoded {
		if !has[strings.ToLower(k)] {
			out[k] = v
		}
	}
	return out
}

// openSnapshot opens a recovery point's snapshot for reading.
func (s *Service) openSnapshot(ctx context.Context, v *backup.Vault, rp *backup.RecoveryPoint) (resource.Snapshot, error) {
	if s.deps.Repos == nil {
		return resource.Snapshot{}, &backup.Error{Code: backup.CodeUnavailable, Message: "vault repositories are not configured on this server"}
	}
	repo, err := s.deps.Repos.Open(ctx, v)
	if err != nil {
		return resource.Snapshot{}, &backup.Error{Code: backup.CodeUnavailable, Message: "cannot open the repository of vault " + v.Name, Err: err}
	}
	man, err := repo.LoadManifest(ctx, rp.ManifestID)
	if err != nil {
		return resource.Snapshot{}, &backup.Error{Code: backup.CodeUnavailable, Message: "cannot read recovery point " + rp.Arn, Err: err}
	}
	return resource.Snapshot{Loader: repo, Root: man.Root}, nil
}

// RestoreJobMetadata is the metadata restore job jobID runs with
// (GetRestoreJobMetadata).
func (s *Service) RestoreJobMetadata(ctx context.Context, c Caller, jobID string) (map[string]string, error) {
	var md map[string]string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		j, err := tx.GetJob(ctx, c.Scope(), backup.JobRestore, jobID)
		if backup.IsCode(err, backup.CodeNotFound) {
			return restoreJobNotFound(jobID)
		}
		if err != nil {
			return err
		}
		p, err := restorejob.ParseParams(j.ParametersJSON)
		if err != nil {
			return err
		}
		md = p.Metadata
		return nil
	})
	if md == nil && err == nil {
		md = map[string]string{}
	}
	return md, err
}

func restoreJobNotFound(id string) error {
	return backup.NotFound(id, "Restore job %s does not exist", id)
}

// RecoveryPointRestoreMetadata is GetRecoveryPointRestoreMetadata: the
// recovery point (in vault) and the metadata that restores it.
func (s *Service) RecoveryPointRestoreMetadata(ctx context.Context, c Caller, vaultName, rpArn string) (*backup.Vault, *backup.RecoveryPoint, map[string]string, error) {
	var v *backup.Vault
	var rp *backup.RecoveryPoint
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		v, err = tx.GetVault(ctx, c.Scope(), vaultName)
		if backup.IsCode(err, backup.CodeNotFound) {
			return backup.NotFound(vaultName, "Backup vault %s does not exist", vaultName)
		}
		if err != nil {
			return err
		}
		rp, err = tx.GetRecoveryPoint(ctx, c.Scope(), rpArn)
		if backup.IsCode(err, backup.CodeNotFound) || (err == nil && rp.VaultName != v.Name) {
			return backup.NotFound(rpArn, "Recovery point %s does not exist in backup vault %s", rpArn, vaultName)
		}
		return err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	md := map[string]string{}
	if p, ok := s.plugins.Lookup(rp.ResourceType); ok {
		md = p.RestoreMetadata(rp)
	}
	return v, rp, md, nil
}
