// Package service holds Coffer's use cases, shared by every front end (the
// AWS Backup API in internal/api, the Alibaba HBR API beside it): starting
// and stopping backup, copy and restore jobs, and the queries that show
// jobs, vaults and recovery points. Requests are typed domain values and
// errors are *backup.Error with neutral codes; front ends only translate
// their wire shapes to these and back. Resource-type knowledge comes from
// the resource plugins in the registry.
package service

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/resource"
	"coffer/internal/store"
)

// Caller is the authenticated caller. Every lookup is keyed by its
// (AccountID, Region); both come from the credential, never from a
// request.
type Caller struct {
	AccountID string
	Region    string
	// Management is true for the organization's management account.
	Management bool
}

// Scope is the caller's store scope.
func (c Caller) Scope() store.Scope { return store.Scope{AccountID: c.AccountID, Region: c.Region} }

// Page requests one page of a list; After is the cursor a previous page
// returned ("" for the first).
type Page = store.Page

// Repos opens vault repositories (vaultrepo.Manager).
type Repos interface {
	Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error)
}

// VaultStorage creates and removes the repository behind a vault.
type VaultStorage interface {
	CreateVaultStorage(ctx context.Context, v *backup.Vault) error
	DeleteVaultStorage(ctx context.Context, v *backup.Vault) error
}

// RecoveryPointData removes the repository data of a deleted recovery
// point.
type RecoveryPointData interface {
	DeleteRecoveryPointData(ctx context.Context, v *backup.Vault, manifestID string) error
}

// Notifier is woken after a job is created (the job runner).
type Notifier interface {
	Notify()
}

// Deps are the service's collaborators. Store, Clock and Plugins are
// required; the others may be nil in tests (vaults are then metadata only,
// restores cannot read repositories, nobody is woken).
type Deps struct {
	Store             store.Store
	Clock             clock.Clock
	Plugins           *resource.Registry
	Repos             Repos
	VaultStorage      VaultStorage
	RecoveryPointData RecoveryPointData
	Notifier          Notifier
	Logger            *slog.Logger
}

// Service runs the use cases.
type Service struct {
	st      store.Store
	clk     clock.Clock
	plugins *resource.Registry
	deps    Deps
	log     *slog.Logger
	// planNotifier is woken when plans or selections change.
	planNotifier Notifier
}

// New returns a Service.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.Clock == nil || d.Plugins == nil {
		return nil, errors.New("service: Store, Clock and Plugins are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Service{st: d.Store, clk: d.Clock, plugins: d.Plugins, deps: d, log: d.Logger}, nil
}

// ResourceTypes lists the resource types this deployment can back up.
func (s *Service) ResourceTypes() []string { return s.plugins.Types() }

func (s *Service) notify() {
	if s.deps.Notifier != nil {
		s.deps.Notifier.Notify()
	}
}

// resolveResource resolves a resource ARN to a resource of the caller.
// Other accounts' resources behave exactly like missing ones.
func (s *Service) resolveResource(ctx context.Context, tx store.Resources, c Caller, param, arn string) (resource.Plugin, *backup.Resource, error) {
	p, ref, ok := s.plugins.ForARN(arn)
	if !ok {
		return nil, nil, backup.InvalidParam(param, "Unsupported resource type: %s", backup.Truncate(arn, 300))
	}
	notFound := backup.NotFound(arn, "Resource %s does not exist", backup.Truncate(arn, 300))
	if (ref.Region != "" && ref.Region != c.Region) || (ref.Account != "" && ref.Account != c.AccountID) {
		return nil, nil, notFound
	}
	r, err := tx.GetResource(ctx, c.Scope(), p.Type(), ref.ID)
	if backup.IsCode(err, backup.CodeNotFound) {
		return nil, nil, notFound
	}
	if err != nil {
		return nil, nil, err
	}
	return p, r, nil
}

// resourceLookup gives plugins read access to the caller's resources.
type resourceLookup struct {
	st store.Store
	sc store.Scope
}

func (l resourceLookup) GetResource(ctx context.Context, typ, id string) (*backup.Resource, error) {
	var r *backup.Resource
	err := l.st.Read(ctx, func(tx store.Tx) error {
		var err error
		r, err = tx.GetResource(ctx, l.sc, typ, id)
		return err
	})
	return r, err
}

// SetNotifier sets who is woken after a job is created (the runner, which
// is built after the service).
func (s *Service) SetNotifier(n Notifier) { s.deps.Notifier = n }

// SetPlanNotifier sets who is woken after a backup plan or selection
// changes (the scheduler, which is built after the service).
func (s *Service) SetPlanNotifier(n Notifier) { s.planNotifier = n }

func (s *Service) plansChanged() {
	if s.planNotifier != nil {
		s.planNotifier.Notify()
	}
}
