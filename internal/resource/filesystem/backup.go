package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"coffer/internal/backup"

	"coffer/internal/repository"
	"coffer/internal/resource"
	"coffer/internal/resource/fstree"
)

// Backup walks the file system's tree into the session; with a parent
// snapshot, files whose size and modification time are unchanged are
// taken from it without reading them.
func (p *Plugin) Backup(ctx context.Context, req resource.BackupRequest) (resource.BackupResult, error) {
	root := req.Resource.Attr(AttrPath)
	id := req.Resource.ID
	if root == "" {
		return resource.BackupResult{}, backup.Fail(backup.CategoryInvalidParameters, resource.ErrInvalid,
			"File system %s cannot be backed up: the server has no directory configured for it.", id)
	}
	// The root is checked here, so that a missing or unreadable root is
	// told apart from a failure of the vault's storage during the walk.
	if err := checkRoot(root); err != nil {
		if p.Log != nil {
			p.Log.Warn("file system root cannot be read", "file_system", id, "path", root, "err", err)
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return resource.BackupResult{}, backup.Fail(backup.CategoryResourceNotFound, errors.Join(resource.ErrSourceNotFound, err),
				"File system %s cannot be backed up: its directory does not exist on the server.", id)
		case errors.Is(err, fs.ErrPermission):
			return resource.BackupResult{}, backup.Fail(backup.CategoryAccessDenied, err,
				"File system %s cannot be backed up: the server may not read its directory (permission denied).", id)
		}
		return resource.BackupResult{}, backup.Fail(backup.CategoryFailed, err,
			"File system %s cannot be backed up: its directory cannot be read (%s).", id, reason(err, root))
	}
	opts := fstree.BackupOptions{Workers: p.Workers, Progress: func(pr fstree.Progress) {
		total := int64(0)
		if pr.TotalKnown {
			total = pr.BytesTotal
		}
		req.Progress.Update(pr.BytesDone, total)
	}}
	var loader fstree.Loader
	if req.Parent != nil && req.Parent.Root != (repository.ID{}) {
		opts.Parent, loader = req.Parent.Root, req.Parent.Loader
	}
	res, err := fstree.Backup(ctx, req.Session, loader, root, opts)
	if err != nil {
		// Errors of the vault's storage are the core's to describe; the
		// walk's own (the root vanished meanwhile) come back as they are.
		return resource.BackupResult{}, err
	}
	out := resource.BackupResult{Root: res.Root, Items: res.Files, Containers: res.Dirs, BytesTotal: res.BytesTotal,
		BytesRead: res.BytesRead, New: res.NewFiles, Changed: res.ChangedFiles, Unchanged: res.UnchangedFiles,
		Problems: problems(res.Problems, root)}
	if p.Log != nil {
		for i, pr := range res.Problems {
			if i == 20 {
				p.Log.Warn("more backup problems", "file_system", id, "count", len(res.Problems)-i)
				break
			}
			p.Log.Warn("backup problem", "file_system", id, "path", pr.Path, "err", pr.Err)
		}
	}
	return out, nil
}

// checkRoot opens a file system's root directory and reads one entry.
func checkRoot(root string) error {
	f, err := os.Open(root)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %w", root, syscall.ENOTDIR)
	}
	if _, err := f.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// CleanStaging removes the staging areas of restores that will not finish:
// fstree's staging directories inside every file system, and staged new
// file systems under NewFileSystemsDir, whose job is not live.
func (p *Plugin) CleanStaging(ctx context.Context, req resource.CleanupRequest) error {
	var errs []error
	for _, r := range req.Resources {
		root := r.Attr(AttrPath)
		if root == "" {
			continue
		}
		if _, err := os.Lstat(root); errors.Is(err, os.ErrNotExist) {
			continue
		}
		// Placed but not committed (a crash in between): taken away first.
		if err := undoUncommitted(root, req.Live, req.Completed); err != nil {
			errs = append(errs, fmt.Errorf("restore staging cleanup of file system %s: %w", r.ID, err))
			continue
		}
		if err := fstree.CleanStaging(root, req.Live); err != nil {
			errs = append(errs, fmt.Errorf("restore staging cleanup of file system %s: %w", r.ID, err))
		}
	}
	if dir := p.NewFileSystemsDir; dir != "" {
		if _, err := os.Lstat(dir); err == nil {
			// Restores into new file systems stage inside the directory too.
			if err := fstree.CleanStaging(dir, req.Live); err != nil {
				errs = append(errs, fmt.Errorf("restore staging cleanup of new_file_systems_dir: %w", err))
			}
		}
		if err := cleanNewFSStaging(dir, req.Live, req.Completed); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanNewFSStaging removes new file systems whose restore is not live,
// and those moved into place by a restore that then did not complete.
func cleanNewFSStaging(dir string, live, completed func(jobID string) bool) error {
	root, err := os.OpenRoot(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore staging cleanup of new_file_systems_dir: %w", err)
	}
	defer root.Close()
	f, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("restore staging cleanup of new_file_systems_dir: %w", err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("restore staging cleanup of new_file_systems_dir: %w", err)
	}
	var errs []error
	for _, n := range names {
		job, ok := strings.CutPrefix(n, NewFSStagingPrefix)
		if !ok || (live != nil && live(job)) {
			continue
		}
		if job, ok := strings.CutSuffix(job, placedSuffix); ok {
			if live != nil && live(job) {
				continue
			}
			if completed == nil || !completed(job) {
				if err := undoPlacedNewFS(root, job); err != nil {
					errs = append(errs, fmt.Errorf("restore staging cleanup of new_file_systems_dir: %w", err))
					continue
				}
			}
		}
		if err := root.RemoveAll(n); err != nil {
			errs = append(errs, fmt.Errorf("restore staging cleanup of new_file_systems_dir: %w", err))
		}
	}
	return errors.Join(errs...)
}
