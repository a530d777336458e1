package filesystem

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"

	"coffer/internal/resource/fstree"
)

// A restore's data appears under its final name in Finish, inside the
// transaction that completes the job. Finish first records where it moves
// the data (a "placed" marker), so that a crash after the move but before
// the commit can be undone: at the next start CleanStaging takes the data
// away again unless the job COMPLETED. Committed removes the marker once
// the commit is durable.
//
// Restores into an existing file system: the marker is the file "placed"
// in the job's staging directory, holding the destination path; the data
// has moved when the staging directory's "data" is gone.
// Restores into a new file system: the marker is NewFSStagingPrefix+job+
// placedSuffix in NewFileSystemsDir, holding the file system id; the data
// has moved when NewFSStagingPrefix+job is gone.

const (
	placedFile   = "placed"
	placedSuffix = ".placed"
)

// writeMarker writes name into the file rel of root durably.
func writeMarker(root *os.Root, rel, name string) error {
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(name); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if d, err := root.Open(path.Dir(rel)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// readMarker reads a marker; ok is false when there is none.
func readMarker(root *os.Root, rel string) (name string, ok bool, err error) {
	b, err := root.ReadFile(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// validPlaced reports whether name can be a destination a restore placed
// (relative, clean, no staging names): a damaged marker removes nothing.
func validPlaced(name string) bool {
	if name == "" || len(name) > 4096 || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, fstree.StagingPrefix) || strings.HasPrefix(seg, NewFSStagingPrefix) {
			return false
		}
	}
	return true
}

// undoPlacedInTarget takes away the data a restore into an existing file
// system (root) placed without committing: job's staging directory holds a
// marker and no data any more.
func undoPlacedInTarget(root *os.Root, job string) error {
	stage := fstree.StagingPrefix + job
	dest, ok, err := readMarker(root, stage+"/"+placedFile)
	if err != nil || !ok {
		return err
	}
	if _, err := root.Lstat(stage + "/data"); err == nil {
		return nil // not moved: dest is not ours
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !validPlaced(dest) {
		return nil
	}
	return root.RemoveAll(dest)
}

// undoPlacedNewFS takes away a new file system a restore moved into place
// (in root, the new_file_systems_dir) without committing.
func undoPlacedNewFS(root *os.Root, job string) error {
	fsID, ok, err := readMarker(root, NewFSStagingPrefix+job+placedSuffix)
	if err != nil || !ok {
		return err
	}
	if _, err := root.Lstat(NewFSStagingPrefix + job); err == nil {
		return nil // not moved
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !fsIDRE.MatchString(fsID) {
		return nil
	}
	return root.RemoveAll(fsID)
}

// undoUncommitted undoes, in a file system's root dir, the placements of
// restores that are neither live nor completed.
func undoUncommitted(dir string, live, completed func(string) bool) error {
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		job, ok := strings.CutPrefix(n, fstree.StagingPrefix)
		if !ok || (live != nil && live(job)) || (completed != nil && completed(job)) {
			continue
		}
		if err := undoPlacedInTarget(root, job); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
