// Package cofferdirect drives the Coffer engine directly (repository on a
// local directory plus the fstree resource), one operation per call. The
// benchmark runs it in a child process (bench/cmd/coffer-direct) so that its
// wall time and peak RSS are measured exactly like restic's and borg's.
//
// Snapshots made here carry the label "source" (the absolute source path);
// "latest" means the newest manifest with the same label, the way restic
// picks a parent snapshot by path.
package cofferdirect

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"coffer/internal/repository"
	"coffer/internal/repository/blob/local"
	"coffer/internal/resource/fstree"
)

// KeyEnv names the environment variable that holds the 32-byte master key
// as 64 hex digits (the benchmark's analogue of RESTIC_PASSWORD).
const KeyEnv = "COFFER_BENCH_KEY"

// SourceLabel is the manifest label holding the absolute source path.
const SourceLabel = "source"

// ParseKey decodes a hex master key and checks its length.
func ParseKey(s string) ([]byte, error) {
	k, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if len(k) != 32 {
		return nil, fmt.Errorf("master key: %d bytes, want 32", len(k))
	}
	return k, nil
}

// Config says where the repository is and how to open it.
type Config struct {
	RepoDir string
	Key     []byte
	Logger  *slog.Logger // nil: slog.Default()
}

// opts gives the engine the buffer budget of `coffer serve` with local
// vaults (repository.DefaultBuffers), so that coffer-direct's memory is the
// engine's share of the server's.
func (c Config) opts() repository.Options {
	return repository.Options{Logger: c.Logger, Buffers: repository.DefaultBuffers()}
}

// Init creates an empty repository in c.RepoDir (created when missing).
func Init(ctx context.Context, c Config) error {
	st, err := local.Open(c.RepoDir, local.Options{})
	if err != nil {
		return fmt.Errorf("init %s: %w", c.RepoDir, err)
	}
	defer st.Close()
	repo, err := repository.Create(ctx, st, c.Key, c.opts())
	if err != nil {
		return fmt.Errorf("init %s: %w", c.RepoDir, err)
	}
	return repo.Close()
}

// open opens the repository and returns a function closing it and its storage.
func open(ctx context.Context, c Config) (*repository.Repository, func(), error) {
	if _, err := os.Stat(c.RepoDir); err != nil {
		return nil, nil, fmt.Errorf("open repository: %w", err)
	}
	st, err := local.Open(c.RepoDir, local.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("open repository %s: %w", c.RepoDir, err)
	}
	repo, err := repository.Open(ctx, st, c.Key, c.opts())
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("open repository %s: %w", c.RepoDir, err)
	}
	return repo, func() { repo.Close(); st.Close() }, nil
}

// BackupSummary reports a finished backup.
type BackupSummary struct {
	Manifest       string `json:"manifest"`
	Parent         string `json:"parent,omitempty"`
	Files          int64  `json:"files"`
	Dirs           int64  `json:"dirs"`
	Symlinks       int64  `json:"symlinks"`
	BytesTotal     int64  `json:"bytes_total"`
	BytesRead      int64  `json:"bytes_read"`
	NewFiles       int64  `json:"new_files"`
	ChangedFiles   int64  `json:"changed_files"`
	UnchangedFiles int64  `json:"unchanged_files"`
	NewBlobs       int64  `json:"new_blobs"`
	StoredBytes    int64  `json:"stored_bytes"`
	Problems       int    `json:"problems"`
}

// Backup stores the tree at src as a new snapshot. With useParent, the newest
// snapshot of the same source (if any) is the parent, so unchanged files are
// not read again.
func Backup(ctx context.Context, c Config, src string, useParent bool) (BackupSummary, error) {
	var sum BackupSummary
	abs, err := filepath.Abs(src)
	if err != nil {
		return sum, fmt.Errorf("backup: %w", err)
	}
	repo, closeRepo, err := open(ctx, c)
	if err != nil {
		return sum, err
	}
	defer closeRepo()

	var opts fstree.BackupOptions
	if useParent {
		m, ok, err := Latest(ctx, repo, abs)
		if err != nil {
			return sum, err
		}
		if ok {
			opts.Parent = m.Root
			sum.Parent = m.ID
		}
	}
	var res fstree.BackupResult
	var session *repository.Writer
	err = repo.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		session = w
		var err error
		res, err = fstree.Backup(ctx, w, repo, abs, opts)
		return err
	})
	if err != nil {
		return sum, fmt.Errorf("backup %s: %w", abs, err)
	}
	// The session's counters are final (and only read) once WithWriter has
	// flushed the last pack.
	stats := session.Stats()
	m, err := repo.SaveManifest(ctx, repository.Manifest{
		Root:   res.Root,
		Labels: map[string]string{SourceLabel: abs},
		Stats: repository.ManifestStats{
			Files: res.Files, Dirs: res.Dirs, Bytes: res.BytesTotal,
			StoredBytes: stats.StoredBytes, NewBlobs: stats.NewBlobs,
			Errors: int64(len(res.Problems)),
		},
	})
	if err != nil {
		return sum, fmt.Errorf("backup %s: %w", abs, err)
	}
	sum.Manifest = m.ID
	sum.Files, sum.Dirs, sum.Symlinks = res.Files, res.Dirs, res.Symlinks
	sum.BytesTotal, sum.BytesRead = res.BytesTotal, res.BytesRead
	sum.NewFiles, sum.ChangedFiles, sum.UnchangedFiles = res.NewFiles, res.ChangedFiles, res.UnchangedFiles
	sum.NewBlobs, sum.StoredBytes = stats.NewBlobs, stats.StoredBytes
	sum.Problems = len(res.Problems)
	if len(res.Problems) > 0 {
		return sum, fmt.Errorf("backup %s stored snapshot %s with %d problems, first: %v",
			abs, m.ID, len(res.Problems), res.Problems[0])
	}
	return sum, nil
}

// Latest returns the newest manifest labelled with source; ok is false when
// there is none.
func Latest(ctx context.Context, repo *repository.Repository, source string) (m repository.Manifest, ok bool, err error) {
	err = repo.ListManifests(ctx, func(cur repository.Manifest) error {
		if source != "" && cur.Labels[SourceLabel] != source {
			return nil
		}
		if !ok || cur.Time.After(m.Time) {
			m, ok = cur, true
		}
		return nil
	})
	if err != nil {
		return repository.Manifest{}, false, fmt.Errorf("list snapshots: %w", err)
	}
	return m, ok, nil
}

// RestoreSummary reports a finished restore.
type RestoreSummary struct {
	Manifest  string `json:"manifest"`
	Files     int64  `json:"files"`
	HardLinks int64  `json:"hard_links"`
	Dirs      int64  `json:"dirs"`
	Symlinks  int64  `json:"symlinks"`
	Bytes     int64  `json:"bytes"`
	Problems  int    `json:"problems"`
}

// Restore writes a snapshot ("latest" for the newest of any source, or a
// manifest ID) to dst, which must not exist; its parent directory must.
func Restore(ctx context.Context, c Config, snapshot, dst string) (RestoreSummary, error) {
	var sum RestoreSummary
	abs, err := filepath.Abs(dst)
	if err != nil {
		return sum, fmt.Errorf("restore: %w", err)
	}
	if _, err := os.Lstat(abs); err == nil {
		return sum, fmt.Errorf("restore: %s already exists", abs)
	} else if !errors.Is(err, os.ErrNotExist) {
		return sum, fmt.Errorf("restore: %w", err)
	}
	repo, closeRepo, err := open(ctx, c)
	if err != nil {
		return sum, err
	}
	defer closeRepo()

	var m repository.Manifest
	if snapshot == "" || snapshot == "latest" {
		var ok bool
		m, ok, err = Latest(ctx, repo, "")
		if err != nil {
			return sum, err
		}
		if !ok {
			return sum, errors.New("restore: the repository has no snapshot")
		}
	} else if m, err = repo.LoadManifest(ctx, snapshot); err != nil {
		return sum, fmt.Errorf("restore: %w", err)
	}
	res, err := fstree.Restore(ctx, repo, m.Root, fstree.RestoreOptions{
		TargetRoot: filepath.Dir(abs),
		Dest:       filepath.Base(abs),
		StagingID:  "bench",
	})
	sum = RestoreSummary{Manifest: m.ID, Files: res.Files, HardLinks: res.HardLinks, Dirs: res.Dirs,
		Symlinks: res.Symlinks, Bytes: res.Bytes, Problems: len(res.Problems)}
	if err != nil {
		return sum, fmt.Errorf("restore %s to %s: %w", m.ID, abs, err)
	}
	if len(res.Problems) > 0 {
		return sum, fmt.Errorf("restore %s to %s: %d problems, first: %v", m.ID, abs, len(res.Problems), res.Problems[0])
	}
	return sum, nil
}
