package filesystem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"coffer/internal/repository"
	"coffer/internal/resource"
	"coffer/internal/resource/fstree"
)

// Backup walks the file system's tree into the session; with a parent
// snapshot, files whose size and modification time are unchanged are
// taken from it without reading them.
func (p *Plugin) Backup(ctx context.Context, req resource.BackupRequest) (resource.BackupResult, error) {
	root := req.Resource.Attr(AttrPath)
	if root == "" {
		return resource.BackupResult{}, fmt.Errorf("%w: file system %s has no path", resource.ErrInvalid, req.Resource.ID)
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
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: %w", resource.ErrSourceNotFound, err)
		}
		return resource.BackupResult{}, err
	}
	out := resource.BackupResult{Root: res.Root, Items: res.Files, Containers: res.Dirs, BytesTotal: res.BytesTotal,
		BytesRead: res.BytesRead, New: res.NewFiles, Changed: res.ChangedFiles, Unchanged: res.UnchangedFiles}
	for _, pr := range res.Problems {
		out.Problems = append(out.Problems, resource.Problem{Path: pr.Path, Err: pr.Err})
	}
	return out, nil
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
		if err := cleanNewFSStaging(dir, req.Live); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanNewFSStaging removes new file systems whose restore is not live.
func cleanNewFSStaging(dir string, live func(jobID string) bool) error {
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
		if err := root.RemoveAll(n); err != nil {
			errs = append(errs, fmt.Errorf("restore staging cleanup of new_file_systems_dir: %w", err))
		}
	}
	return errors.Join(errs...)
}
