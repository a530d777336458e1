package fstree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// maxUniqueDest bounds the names UniqueDest tries.
const maxUniqueDest = 1000

// freeDest sets Dest to the first of Dest, Dest-2, Dest-3, … that does not
// exist (UniqueDest).
func (r *restorer) freeDest() error {
	base := r.baseDest
	if base == "" {
		base, r.baseDest = r.opts.Dest, r.opts.Dest
	}
	for i := 1; i <= maxUniqueDest; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := r.root.Lstat(name); errors.Is(err, os.ErrNotExist) {
			r.opts.Dest = name
			return nil
		} else if err != nil {
			return fmt.Errorf("stat dest: %w", err)
		}
	}
	return fmt.Errorf("%w: %q and %d more names are taken", ErrDestExists, base, maxUniqueDest-1)
}

// moveNew renames the staged tree to Dest; it fails if Dest appeared
// meanwhile (RENAME_NOREPLACE), unless UniqueDest lets it take the next
// free name.
func (r *restorer) moveNew() error {
	src, err := r.root.OpenFile(r.stageName, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open staging: %w", err)
	}
	defer src.Close()
	dst, err := r.root.OpenFile(path.Dir(r.opts.Dest), os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open dest parent: %w", err)
	}
	defer dst.Close()
	for attempt := 0; ; attempt++ {
		if r.before != nil {
			if err := r.before(r.opts.Dest); err != nil {
				return err
			}
		}
		err := unix.Renameat2(int(src.Fd()), "data", int(dst.Fd()), path.Base(r.opts.Dest), unix.RENAME_NOREPLACE)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("move into place: %w", err)
		}
		if !r.opts.UniqueDest || attempt >= maxUniqueDest {
			return fmt.Errorf("%w: %q appeared during the restore", ErrDestExists, r.opts.Dest)
		}
		if err := r.freeDest(); err != nil {
			return err
		}
	}
}

// merge moves staged entries into the existing Dest applying the conflict
// policy. Both sides are handled through directory descriptors and single
// names, never following a symlink found at Dest.
func (r *restorer) merge(ctx context.Context) error {
	src, err := r.root.OpenFile(r.dataRel, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open staging: %w", err)
	}
	defer src.Close()
	dst, err := r.root.OpenFile(r.opts.Dest, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open dest: %w", err)
	}
	defer dst.Close()
	return r.mergeDir(ctx, src, dst, r.opts.Dest)
}

func (r *restorer) mergeDir(ctx context.Context, src, dst *os.File, drel string) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list staging: %w", err)
	}
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		var sst, dst2 unix.Stat_t
		if err := unix.Fstatat(sfd, name, &sst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat staged %s: %w", name, err)
		}
		err := unix.Fstatat(dfd, name, &dst2, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Renameat2(sfd, name, dfd, name, unix.RENAME_NOREPLACE); err != nil {
				return fmt.Errorf("move %s/%s: %w", drel, name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %s/%s: %w", drel, name, err)
		}
		sDir := sst.Mode&unix.S_IFMT == unix.S_IFDIR
		dDir := dst2.Mode&unix.S_IFMT == unix.S_IFDIR
		if sDir && dDir {
			if err := r.mergeSub(ctx, sfd, dfd, name, drel+"/"+name); err != nil {
				return err
			}
			continue
		}
		replace := false
		switch r.opts.ConflictPolicy {
		case OverwriteExisting:
			replace = true
		case OverwriteIfNewer:
			replace = sst.Mtim.Nano() > dst2.Mtim.Nano()
		}
		if !replace {
			r.skipped.Add(1)
			continue
		}
		switch {
		case dDir: // a real directory gives way to a non-directory
			if err := r.root.RemoveAll(drel + "/" + name); err != nil {
				return fmt.Errorf("remove %s/%s: %w", drel, name, err)
			}
			err = unix.Renameat2(sfd, name, dfd, name, unix.RENAME_NOREPLACE)
		case sDir: // a file or symlink gives way to a directory
			if err := unix.Unlinkat(dfd, name, 0); err != nil {
				return fmt.Errorf("remove %s/%s: %w", drel, name, err)
			}
			err = unix.Renameat2(sfd, name, dfd, name, unix.RENAME_NOREPLACE)
		default: // non-directory over non-directory: atomic replace of the entry itself
			err = unix.Renameat(sfd, name, dfd, name)
		}
		if err != nil {
			return fmt.Errorf("replace %s/%s: %w", drel, name, err)
		}
		r.replaced.Add(1)
	}
	return nil
}

func (r *restorer) mergeSub(ctx context.Context, sfd, dfd int, name, drel string) error {
	open := func(fd int) (*os.File, error) {
		nfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", drel, err)
		}
		return os.NewFile(uintptr(nfd), name), nil
	}
	s, err := open(sfd)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := open(dfd)
	if err != nil {
		return err
	}
	defer d.Close()
	return r.mergeDir(ctx, s, d, drel)
}

// PlaceStaged moves the tree a KeepStaged restore left in staging
// directory stagingID of targetRoot to dest (the restore's
// RestoreResult.Dest), never replacing anything: if dest appeared
// meanwhile, unique makes it take dest-2, dest-3, … instead. before, when
// set, is called with each name just before the move to it is tried (to
// record where the tree goes). It returns the name used; the staging
// directory itself stays (DiscardStaged removes it).
func PlaceStaged(targetRoot, stagingID, dest string, unique bool, before func(dest string) error) (string, error) {
	if !stagingIDRe.MatchString(stagingID) {
		return "", fmt.Errorf("place staged: %w: bad StagingID %q", ErrInvalidOptions, stagingID)
	}
	if err := validateDest(dest); err != nil {
		return "", fmt.Errorf("place staged: %w: %v", ErrInvalidOptions, err)
	}
	root, err := os.OpenRoot(targetRoot)
	if err != nil {
		return "", fmt.Errorf("place staged: %w", err)
	}
	defer root.Close()
	r := &restorer{root: root, opts: RestoreOptions{Dest: dest, UniqueDest: unique}, stageName: StagingPrefix + stagingID,
		before: before}
	if err := r.moveNew(); err != nil {
		return "", fmt.Errorf("place staged: %w", err)
	}
	// The move is durable before the caller commits.
	if d, err := root.OpenFile(path.Dir(r.opts.Dest), os.O_RDONLY|unix.O_DIRECTORY, 0); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return r.opts.Dest, nil
}

// DiscardStaged removes staging directory stagingID of targetRoot (what a
// KeepStaged restore left there, or what PlaceStaged left of it).
func DiscardStaged(targetRoot, stagingID string) error {
	if !stagingIDRe.MatchString(stagingID) {
		return fmt.Errorf("discard staged: %w: bad StagingID %q", ErrInvalidOptions, stagingID)
	}
	root, err := os.OpenRoot(targetRoot)
	if err != nil {
		return fmt.Errorf("discard staged: %w", err)
	}
	defer root.Close()
	if err := root.RemoveAll(StagingPrefix + stagingID); err != nil {
		return fmt.Errorf("discard staged: %w", err)
	}
	return nil
}

// CleanStaging removes staging directories left in targetRoot by restores
// that did not finish (a crash). keep, when not nil, is asked about each
// staging directory's StagingID; those it keeps belong to restores that
// may still be running (in another process) and are left alone.
func CleanStaging(targetRoot string, keep func(stagingID string) bool) error {
	root, err := os.OpenRoot(targetRoot)
	if err != nil {
		return fmt.Errorf("clean staging: %w", err)
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("clean staging: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("clean staging: %w", err)
	}
	var errs []error
	for _, name := range names {
		if id, ok := strings.CutPrefix(name, StagingPrefix); ok {
			if keep != nil && keep(id) {
				continue
			}
			if err := root.RemoveAll(name); err != nil {
				errs = append(errs, fmt.Errorf("clean staging %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
