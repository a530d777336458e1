// Package stack wires Coffer's core for tests the way cmd/coffer does: the
// resource plugin registry, the service (use cases) and the job handlers.
package stack

import (
	"log/slog"

	"coffer/internal/backupjob"
	"coffer/internal/clock"
	"coffer/internal/copyjob"
	"coffer/internal/jobs"
	"coffer/internal/resource"
	"coffer/internal/resource/filesystem"
	"coffer/internal/restorejob"
	"coffer/internal/service"
	"coffer/internal/store"
	"coffer/internal/vaultrepo"
)

// Options are the pieces a test provides.
type Options struct {
	Store store.Store
	Clock clock.Clock
	// Repos may be nil: vaults are then metadata only and no handler can
	// run.
	Repos *vaultrepo.Manager
	// NewFileSystemsDir is the file-system plugin's new_file_systems_dir.
	NewFileSystemsDir string
	Logger            *slog.Logger
}

// Stack is the wired core.
type Stack struct {
	Plugins *resource.Registry
	Service *service.Service
	Backup  *backupjob.Handler
	Copy    *copyjob.Handler
	Restore *restorejob.Handler
}

// Build wires the core. Set the runner with Service.SetNotifier once it
// exists.
func Build(o Options) (*Stack, error) {
	reg, err := resource.NewRegistry(&filesystem.Plugin{NewFileSystemsDir: o.NewFileSystemsDir, Log: o.Logger})
	if err != nil {
		return nil, err
	}
	d := service.Deps{Store: o.Store, Clock: o.Clock, Plugins: reg, Logger: o.Logger}
	s := &Stack{Plugins: reg}
	if o.Repos != nil {
		d.Repos, d.VaultStorage, d.RecoveryPointData = o.Repos, o.Repos, o.Repos
		s.Backup = &backupjob.Handler{Store: o.Store, Repos: o.Repos, Clock: o.Clock, Plugins: reg}
		s.Copy = &copyjob.Handler{Store: o.Store, Repos: o.Repos, Clock: o.Clock}
		s.Restore = &restorejob.Handler{Store: o.Store, Repos: o.Repos, Clock: o.Clock, Plugins: reg}
	}
	if s.Service, err = service.New(d); err != nil {
		return nil, err
	}
	return s, nil
}

// Handlers are every job handler.
func (s *Stack) Handlers() []jobs.Handler {
	return []jobs.Handler{s.Backup, s.Copy, s.Restore}
}
