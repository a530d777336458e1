package filesystem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource"
	"coffer/internal/resource/fstree"
)

var (
	_ resource.Browser          = (*Plugin)(nil)
	_ resource.RestorePreviewer = (*Plugin)(nil)
)

// browseErr turns an fstree error about a request's path or glob into the
// caller's terms (never a server path).
func browseErr(rp *backup.RecoveryPoint, param string, err error) error {
	switch {
	case errors.Is(err, fstree.ErrInvalidItem), errors.Is(err, fstree.ErrBadPattern):
		return backup.InvalidParam(param, "%s: %v", param, err)
	case errors.Is(err, fstree.ErrItemNotFound):
		return backup.NotFound(rp.Arn, "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return &backup.Error{Code: backup.CodeUnavailable, Context: rp.Arn, Message: "cannot read recovery point " + rp.Arn, Err: err}
}

// Browse lists a directory of a file-system snapshot ("/" is its root),
// or searches below it with a glob (the restore Include syntax).
func (p *Plugin) Browse(ctx context.Context, req resource.BrowseRequest) (resource.BrowsePage, error) {
	dir := req.Path
	if dir == "" {
		dir = "/"
	}
	if !strings.HasPrefix(dir, "/") {
		return resource.BrowsePage{}, backup.InvalidParam("Path", "Path must start with / (a directory of the file system)")
	}
	if dir != "/" {
		dir = strings.TrimSuffix(dir, "/")
	}
	limit := req.Limit
	if limit <= 0 {
		limit = resource.DefaultBrowseLimit
	}
	limit = min(limit, resource.MaxBrowseLimit)
	var page resource.BrowsePage
	var entries []fstree.ListEntry
	if req.Glob != "" {
		var err error
		entries, page.Next, err = fstree.Search(ctx, req.Snapshot.Loader, req.Snapshot.Root, dir, req.Glob, req.After, limit, resource.BrowseScanBudget)
		if err != nil {
			param := "Path"
			if errors.Is(err, fstree.ErrBadPattern) {
				param = "Glob"
			}
			return page, browseErr(req.RecoveryPoint, param, err)
		}
	} else {
		var more bool
		var err error
		entries, more, err = fstree.List(ctx, req.Snapshot.Loader, req.Snapshot.Root, dir, req.After, limit)
		if err != nil {
			return page, browseErr(req.RecoveryPoint, "Path", err)
		}
		if more {
			page.Next = entries[len(entries)-1].Node.Name
		}
	}
	page.Entries = make([]resource.Entry, 0, len(entries))
	for _, e := range entries {
		page.Entries = append(page.Entries, entryOf(e))
	}
	return page, nil
}

func entryOf(e fstree.ListEntry) resource.Entry {
	n := e.Node
	out := resource.Entry{Path: e.Path, Name: n.Name, Mode: n.Mode & 0o7777, ModTime: time.Unix(0, n.MTimeNs).UTC()}
	switch n.Type {
	case snapshot.TypeFile:
		out.Type, out.Size = resource.EntryFile, n.Size
	case snapshot.TypeDir:
		out.Type = resource.EntryDir
	case snapshot.TypeSymlink:
		out.Type, out.Target = resource.EntrySymlink, n.LinkTarget
	default:
		out.Type = resource.EntryOther
	}
	return out
}

// PreviewRestore reports what Restore would create, replace and keep; it
// only reads the snapshot's trees and lstats the target.
func (p *Plugin) PreviewRestore(ctx context.Context, req resource.PreviewRequest) (resource.RestorePreview, error) {
	spec := req.Spec
	maxPaths := req.MaxPaths
	if maxPaths <= 0 {
		maxPaths = resource.DefaultPreviewPaths
	}
	maxPaths = min(maxPaths, resource.MaxPreviewPaths)
	opts := fstree.RestoreOptions{StagingID: "preview", Items: spec.Items, Include: spec.Include, Exclude: spec.Exclude,
		ConflictPolicy: fstree.ConflictPolicy(spec.ConflictPolicy)}
	var out resource.RestorePreview
	var hide string
	if spec.Target.New {
		if p.NewFileSystemsDir == "" {
			return out, backup.InvalidParam(KeyNewFileSystem, "Metadata key %s: this server has no new_file_systems_dir configured, so restores cannot create file systems", KeyNewFileSystem)
		}
		// A new file system starts empty: everything is created. Its
		// directory may not exist before the first restore.
		opts.TargetRoot, hide = p.NewFileSystemsDir, p.NewFileSystemsDir
		if _, err := os.Stat(opts.TargetRoot); err != nil {
			opts.TargetRoot = os.TempDir()
		}
		opts.Dest = NewFSStagingPrefix + "preview"
		out.Location = "/"
	} else {
		t := req.Target
		opts.TargetRoot, hide = t.Attr(AttrPath), t.Attr(AttrPath)
		if spec.Target.Path != "" {
			opts.Dest = strings.TrimPrefix(spec.Target.Path, "/")
		} else {
			opts.Dest, opts.UniqueDest = restoreDirName(resource.RestoreRequest{Created: req.Created}), true
		}
		out.TargetArn = t.Arn
	}
	pr, err := fstree.Preview(ctx, req.Snapshot.Loader, req.Snapshot.Root, opts, maxPaths)
	out.Problems = problems(pr.Problems, hide, p.NewFileSystemsDir)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return out, ctx.Err()
		case errors.Is(err, fstree.ErrDestExists):
			return out, &backup.Error{Code: backup.CodeInvalidRequest, Context: out.TargetArn,
				Message: fmt.Sprintf("Target path %s exists in file system %s; a restore into it needs a conflict policy", spec.Target.Path, spec.Target.ID)}
		case errors.Is(err, fstree.ErrHostileEntry):
			return out, &backup.Error{Code: backup.CodeInvalidRequest, Context: req.RecoveryPoint.Arn,
				Message: fmt.Sprintf("Recovery point %s holds entries a restore rejects; %s", req.RecoveryPoint.Arn, problemSummary(out.Problems))}
		case errors.Is(err, fstree.ErrInvalidItem), errors.Is(err, fstree.ErrBadPattern):
			return out, backup.InvalidParam(KeyItemsToRestore, "%v", err)
		}
		return out, &backup.Error{Code: backup.CodeUnavailable, Context: req.RecoveryPoint.Arn,
			Message: fmt.Sprintf("cannot preview the restore of %s: %s", req.RecoveryPoint.Arn, reason(err, hide, p.NewFileSystemsDir)), Err: err}
	}
	if !spec.Target.New {
		out.Location = "/" + pr.Dest
	}
	join := func(ps []string) []string {
		for i, s := range ps {
			ps[i] = path.Join(out.Location, s)
		}
		return ps
	}
	out.Create, out.Overwrite, out.Skip, out.Bytes = pr.Create, pr.Overwrite, pr.Skip, pr.Bytes
	out.CreatePaths, out.OverwritePaths, out.SkipPaths = join(pr.CreatePaths), join(pr.OverwritePaths), join(pr.SkipPaths)
	return out, nil
}
