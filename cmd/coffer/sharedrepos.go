package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"coffer/internal/backup"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/store"
	"coffer/internal/vaultrepo"
)

// sharedRepos is the vault repository manager of a node that shares its
// metadata store and vault storage with other nodes. A vault deleted and
// created again by another node has a new repository (new keys), so a
// repository this node cached from before must not be used any more: every
// creation and removal of a vault's repository bumps the vault's epoch in
// the store, and Open reopens a cached repository whose epoch moved.
//
// A job that wrote into a vault (backup, copy) bumps the vault's
// generation in the transaction that commits it, so before its recovery
// point is visible; Open rereads the index of a cached repository whose
// generation another node moved, so a restore or copy of that recovery
// point finds its blobs. (The repository itself rereads its index before
// every write session and when a pack it reads is gone, which covers
// prunes, but not blobs it has never heard of.)
type sharedRepos struct {
	*vaultrepo.Manager
	st store.Store

	mu   sync.Mutex
	seen map[string]store.RepoVersion // repository key -> version the cached repository reflects
	own  map[string]ownWrite          // repository key -> the last version this node's commit produced
}

// ownWrite is a version bump of this node: gen follows prev.
type ownWrite struct{ prev, gen int64 }

func newSharedRepos(m *vaultrepo.Manager, st store.Store) *sharedRepos {
	return &sharedRepos{Manager: m, st: st, seen: map[string]store.RepoVersion{}, own: map[string]ownWrite{}}
}

func repoKey(v *backup.Vault) string { return v.AccountID + "/" + v.Region + "/" + v.Name }

// Open returns the vault's repository, reopened from storage when another
// node re-created it since it was cached.
func (s *sharedRepos) Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error) {
	k := repoKey(v)
	var ver store.RepoVersion
	if err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		ver, err = tx.GetRepoVersion(ctx, k)
		return err
	}); err != nil {
		return nil, fmt.Errorf("vault %s: repository version: %w", v.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen, cached := s.seen[k]
	if cached && seen.Epoch != ver.Epoch {
		if err := s.Manager.Forget(v); err != nil {
			return nil, fmt.Errorf("vault %s: close the outdated repository: %w", v.Name, err)
		}
		cached = false
	}
	// The version is read before opening or rereading: if it moves
	// meanwhile, the next Open rereads again.
	r, err := s.Manager.Open(ctx, v)
	if err != nil {
		return nil, err
	}
	if cached && seen.Generation != ver.Generation {
		if o, ok := s.own[k]; !ok || o.prev != seen.Generation || o.gen != ver.Generation {
			if err := r.Reload(ctx); err != nil {
				return nil, fmt.Errorf("vault %s: reread the index another node changed: %w", v.Name, err)
			}
		}
	}
	s.seen[k] = ver
	delete(s.own, k)
	return r, nil
}

// committed records that this node's commit moved a repository's version
// to ver: the next Open need not reread an index this node wrote itself,
// unless another node's change came in between.
func (s *sharedRepos) committed(k string, ver store.RepoVersion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seen, ok := s.seen[k]; ok && seen.Epoch == ver.Epoch && seen.Generation == ver.Generation-1 {
		s.own[k] = ownWrite{prev: seen.Generation, gen: ver.Generation}
	}
}

// CreateVaultStorage creates the vault's repository and tells the other
// nodes.
func (s *sharedRepos) CreateVaultStorage(ctx context.Context, v *backup.Vault) error {
	if err := s.bump(ctx, v); err != nil {
		return err
	}
	if err := s.Manager.CreateVaultStorage(ctx, v); err != nil {
		return err
	}
	return s.bump(ctx, v)
}

// DeleteVaultStorage removes the vault's repository and tells the other
// nodes.
func (s *sharedRepos) DeleteVaultStorage(ctx context.Context, v *backup.Vault) error {
	if err := s.bump(ctx, v); err != nil {
		return err
	}
	return s.Manager.DeleteVaultStorage(ctx, v)
}

// bump records a re-creation of v's repository (in a transaction of its
// own: the caller's may still roll back, and an extra bump only costs a
// reopen) and forgets what this node cached.
func (s *sharedRepos) bump(ctx context.Context, v *backup.Vault) error {
	k := repoKey(v)
	var ver store.RepoVersion
	if err := s.st.Write(ctx, func(tx store.Tx) error {
		var err error
		ver, err = tx.BumpRepoVersion(ctx, k, true)
		return err
	}); err != nil {
		return fmt.Errorf("vault %s: record the repository change: %w", v.Name, err)
	}
	s.mu.Lock()
	s.seen[k] = ver
	delete(s.own, k)
	s.mu.Unlock()
	return nil
}

// vaultRepos is what the service, the handlers and the sweeper use of the
// vault repositories (a *vaultrepo.Manager, or a *sharedRepos over one).
type vaultRepos interface {
	Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error)
	CreateVaultStorage(ctx context.Context, v *backup.Vault) error
	DeleteVaultStorage(ctx context.Context, v *backup.Vault) error
	DeleteRecoveryPointData(ctx context.Context, v *backup.Vault, manifestID string) error
	Vaults(ctx context.Context) ([]*backup.Vault, error)
}

var (
	_ vaultRepos = (*vaultrepo.Manager)(nil)
	_ vaultRepos = (*sharedRepos)(nil)
)

// announceWrites wraps the handler of a kind of job that writes into
// vaults (BACKUP, COPY): the transaction that commits a job bumps the
// generation of the vaults it wrote, so that other nodes reread their
// index before they use the new recovery point. Deadlines and clean-ups
// of the wrapped handler are passed through.
type announceWrites struct {
	jobs.Handler
	repos *sharedRepos
	// vaults returns the vaults a job writes into.
	vaults func(j *backup.Job) []*backup.Vault
}

var (
	_ jobs.Handler   = (*announceWrites)(nil)
	_ jobs.Deadliner = (*announceWrites)(nil)
	_ jobs.Cleaner   = (*announceWrites)(nil)
)

// Run runs the wrapped handler and adds the version bumps to its commit.
func (h *announceWrites) Run(ctx context.Context, j *backup.Job, p jobs.Progress) (jobs.Result, error) {
	res, err := h.Handler.Run(ctx, j, p)
	if err != nil {
		return res, err
	}
	commit, committed := res.Commit, res.Committed
	bumped := map[string]store.RepoVersion{}
	res.Commit = func(ctx context.Context, tx store.Tx) error {
		if commit != nil {
			if err := commit(ctx, tx); err != nil {
				return err
			}
		}
		clear(bumped) // a transaction run again starts over
		for _, v := range h.vaults(j) {
			if v == nil {
				continue
			}
			ver, err := tx.BumpRepoVersion(ctx, repoKey(v), false)
			if err != nil {
				return err
			}
			bumped[repoKey(v)] = ver
		}
		return nil
	}
	res.Committed = func(ctx context.Context) error {
		for k, ver := range bumped {
			h.repos.committed(k, ver)
		}
		if committed != nil {
			return committed(ctx)
		}
		return nil
	}
	return res, nil
}

// CompleteBy passes the wrapped handler's deadline through.
func (h *announceWrites) CompleteBy(j *backup.Job) (time.Time, bool) {
	if d, ok := h.Handler.(jobs.Deadliner); ok {
		return d.CompleteBy(j)
	}
	return time.Time{}, false
}

// Cleanup passes the wrapped handler's clean-up through.
func (h *announceWrites) Cleanup(ctx context.Context, j *backup.Job) error {
	if c, ok := h.Handler.(jobs.Cleaner); ok {
		return c.Cleanup(ctx, j)
	}
	return nil
}
