package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
)

type event struct{ op, path string }

type recorder struct {
	mu     sync.Mutex
	events []event
	// fail returns an error for the n-th (1-based) call of op, if planned.
	failOp  string
	failNth int
	failErr error
	seen    map[string]int
	fired   int
}

func (r *recorder) hook(op, path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{op, path})
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	r.seen[op]++
	if op == r.failOp && r.seen[op] == r.failNth {
		r.fired++
		return r.failErr
	}
	return nil
}

func (r *recorder) take() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// checkDurableOrder asserts that in one operation's events every commit
// (rename into place), every mkdir and every remove is followed by an fsync
// of the directory holding the new or removed entry, and that every
// committed temp file was fsynced before.
func checkDurableOrder(t *testing.T, what string, ev []event) {
	t.Helper()
	for _, p := range durableOrderProblems(what, ev) {
		t.Error(p)
	}
}

func durableOrderProblems(what string, ev []event) []string {
	var problems []string
	commits := 0
	for i, e := range ev {
		var dir string
		switch e.op {
		case opRename, opCommitNR, opRemove:
			dir = filepath.Dir(e.path)
		case opMkdir:
			dir = filepath.Dir(e.path)
		default:
			continue
		}
		if e.op == opRename || e.op == opCommitNR {
			commits++
			synced := false
			for _, p := range ev[:i] {
				if p.op == opFsync {
					synced = true
				}
			}
			if !synced {
				problems = append(problems, fmt.Sprintf("%s: commit of %s without a preceding file fsync", what, e.path))
			}
		}
		found := false
		for _, n := range ev[i+1:] {
			if n.op == opFsyncDir && n.path == dir {
				found = true
				break
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("%s: %s %s not followed by fsync of %s; events %v", what, e.op, e.path, dir, ev))
		}
	}
	if strings.HasPrefix(what, "put") && commits != 1 {
		problems = append(problems, fmt.Sprintf("%s: %d commits, want 1", what, commits))
	}
	return problems
}

func TestEveryCommitFollowedByDirFsync(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s.ops.hook = rec.hook
	for _, tc := range []struct {
		name string
		opts blob.PutOptions
	}{
		{"top", blob.PutOptions{}},
		{"new/deep/dir/obj", blob.PutOptions{}},
		{"new/deep/dir/obj", blob.PutOptions{}},                 // replace
		{"new/deep/other/obj", blob.PutOptions{IfAbsent: true}}, // partly new dirs
		{"ia/x", blob.PutOptions{IfAbsent: true}},
	} {
		if err := s.Put(ctx, tc.name, []byte(tc.name), tc.opts); err != nil {
			t.Fatal(err)
		}
		ev := rec.take()
		checkDurableOrder(t, "put "+tc.name, ev)
	}
	// Creating "new/deep/dir" must have synced root, new and new/deep.
	if err := s.Put(ctx, "a/b/c", nil, blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := rec.take()
	checkDurableOrder(t, "put a/b/c", ev)
	mkdirs := 0
	for _, e := range ev {
		if e.op == opMkdir {
			mkdirs++
		}
	}
	if mkdirs != 2 {
		t.Errorf("put a/b/c made %d directories, want 2 (a, a/b)", mkdirs)
	}
	if err := s.Delete(ctx, "new/deep/dir/obj"); err != nil {
		t.Fatal(err)
	}
	checkDurableOrder(t, "delete", rec.take())
	// A temp file left by a crash, removed by CleanTemp.
	if err := os.WriteFile(filepath.Join(s.Root(), "a", tempPrefix+"left"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CleanTemp(ctx, 0); err != nil || n != 1 {
		t.Fatalf("CleanTemp = %d, %v; want 1", n, err)
	}
	checkDurableOrder(t, "cleantemp", rec.take())
}

// TestDirectoryEntriesSyncedOnce: a Put syncs the entries of directories it
// did not know to be durable (made by it, by someone else, or before a
// crash) in its commit, after the object's own directory, and later Puts
// into them do not sync the parents again. A failed sync is retried.
func TestDirectoryEntriesSyncedOnce(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Made behind the storage's back: not known durable.
	if err := os.MkdirAll(filepath.Join(root, "x", "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s.ops.hook = rec.hook
	fsyncDirs := func(ev []event) []string {
		var dirs []string
		for _, e := range ev {
			if e.op == opFsyncDir {
				rel, _ := filepath.Rel(root, e.path)
				dirs = append(dirs, rel)
			}
		}
		return dirs
	}
	for _, tc := range []struct {
		name string
		want []string // directories fsynced, in order
	}{
		{"x/y/a", []string{"x/y", "x", "."}},
		{"x/y/b", []string{"x/y"}},
		{"n/m/a", []string{"n/m", "n", "."}},
		{"n/m/b", []string{"n/m"}},
		{"n/c", []string{"n"}},
	} {
		commit, err := s.PutAsync(ctx, tc.name, []byte(tc.name), blob.PutOptions{IfAbsent: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := fsyncDirs(rec.events); len(got) != 0 {
			t.Errorf("put %s: PutAsync fsynced %v before commit", tc.name, got)
		}
		if err := commit(ctx); err != nil {
			t.Fatal(err)
		}
		ev := rec.take()
		checkDurableOrder(t, "put "+tc.name, ev)
		if got := fsyncDirs(ev); !slices.Equal(got, tc.want) {
			t.Errorf("put %s: fsynced %v, want %v", tc.name, got, tc.want)
		}
	}

	// The parent's sync fails: the Put fails and the next Put into the
	// directory syncs the parent again.
	rec = &recorder{failOp: opFsyncDir, failNth: 2, failErr: syscall.EIO}
	s.ops.hook = rec.hook
	if err := s.Put(ctx, "f/a", []byte("a"), blob.PutOptions{}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Put with failing parent sync = %v, want EIO", err)
	}
	rec.take()
	if err := s.Put(ctx, "f/b", []byte("b"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := fsyncDirs(rec.take()), []string{"f", "."}; !slices.Equal(got, want) {
		t.Errorf("put after failed sync: fsynced %v, want %v", got, want)
	}
}

// TestAlreadyExistsIsDurable: a Put that finds the object already there
// (IfAbsent) reports ErrAlreadyExists, which callers take as success, only
// after syncing the directories an earlier Put may have left unsynced.
func TestAlreadyExistsIsDurable(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The first Put renames e/x into place, then fails to sync e's entry in
	// the root (the second directory fsync).
	rec := &recorder{failOp: opFsyncDir, failNth: 2, failErr: syscall.EIO}
	s.ops.hook = rec.hook
	if err := s.Put(ctx, "e/x", []byte("x"), blob.PutOptions{IfAbsent: true}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("first Put = %v, want EIO", err)
	}
	rec = &recorder{}
	s.ops.hook = rec.hook
	if err := s.Put(ctx, "e/x", []byte("x"), blob.PutOptions{IfAbsent: true}); !errors.Is(err, blob.ErrAlreadyExists) {
		t.Fatalf("second Put = %v, want ErrAlreadyExists", err)
	}
	var synced []string
	for _, e := range rec.take() {
		if e.op == opFsyncDir {
			rel, _ := filepath.Rel(s.Root(), e.path)
			synced = append(synced, rel)
		}
	}
	if want := []string{"e", "."}; !slices.Equal(synced, want) {
		t.Errorf("ErrAlreadyExists after syncing %v, want %v", synced, want)
	}
}

// TestDirectoryRemovedBehindTheStorage: a directory the Storage knows as
// durable and that someone removed is made again (and synced) by the next
// Put instead of failing it for the Storage's lifetime.
func TestDirectoryRemovedBehindTheStorage(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "v/w/a", []byte("a"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(s.Root(), "v")); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s.ops.hook = rec.hook
	if err := s.Put(ctx, "v/w/b", []byte("b"), blob.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("Put after the directory was removed: %v", err)
	}
	checkDurableOrder(t, "put v/w/b", rec.take())
	if got, err := s.Get(ctx, "v/w/b", 0, -1); err != nil || string(got) != "b" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

func TestInside(t *testing.T) {
	for _, tc := range []struct {
		root, dir string
		want      bool
	}{
		{"/r", "/r/a", true},
		{"/r", "/r/a/b", true},
		{"/r", "/r", false},
		{"/r", "/rx", false},
		{"/r", "/", false},
		{"/", "/a", true},
		{"/", "/", false},
	} {
		s := &Storage{root: tc.root}
		if got := s.inside(tc.dir); got != tc.want {
			t.Errorf("root %s: inside(%s) = %v, want %v", tc.root, tc.dir, got, tc.want)
		}
	}
}

// TestCheckDurableOrderFails makes sure the order check above can fail.
func TestCheckDurableOrderFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   []event
	}{
		{"no dir fsync", []event{{opCreate, "/r/.tmp~1"}, {opFsync, "/r/.tmp~1"}, {opRename, "/r/x"}}},
		{"dir fsync before rename", []event{{opFsync, "/r/.tmp~1"}, {opFsyncDir, "/r"}, {opRename, "/r/x"}}},
		{"wrong dir", []event{{opFsync, "/r/a/.tmp~1"}, {opRename, "/r/a/x"}, {opFsyncDir, "/r"}}},
		{"no file fsync", []event{{opRename, "/r/x"}, {opFsyncDir, "/r"}}},
		{"mkdir without parent fsync", []event{{opMkdir, "/r/a"}, {opFsync, "/r/a/.tmp~1"}, {opRename, "/r/a/x"}, {opFsyncDir, "/r/a"}}},
	} {
		if len(durableOrderProblems("put x", tc.ev)) == 0 {
			t.Errorf("%s: passed the check", tc.name)
		}
	}
	ok := []event{{opMkdir, "/r/a"}, {opFsyncDir, "/r"}, {opFsync, "/r/a/.tmp~1"}, {opRename, "/r/a/x"}, {opFsyncDir, "/r/a"}}
	if p := durableOrderProblems("put x", ok); len(p) != 0 {
		t.Errorf("correct order rejected: %v", p)
	}
}

func listFiles(t *testing.T, root string) (finals, temps []string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(d.Name(), tempPrefix) {
			temps = append(temps, rel)
		} else {
			finals = append(finals, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return finals, temps
}

func TestInjectedFaultsLeaveNothing(t *testing.T) {
	ctx := context.Background()
	errnos := []struct {
		errno     syscall.Errno
		permanent bool
	}{
		{syscall.ENOSPC, true},
		{syscall.EROFS, true},
		{syscall.EACCES, true},
		{syscall.EDQUOT, true},
		{syscall.EIO, false},
	}
	for _, op := range []string{opCreate, opWrite, opFsync, opClose, opRename, opCommitNR, opMkdir} {
		for _, en := range errnos {
			t.Run(op+"/"+en.errno.Error(), func(t *testing.T) {
				s, err := Open(t.TempDir(), Options{})
				if err != nil {
					t.Fatal(err)
				}
				nth := 1
				if op == opWrite {
					nth = 2 // fail part-way through the data
				}
				rec := &recorder{failOp: op, failNth: nth, failErr: en.errno}
				s.ops.hook = rec.hook
				data := blobtest.Content("f", 5<<20)
				err = s.Put(ctx, "dir/obj", data, blob.PutOptions{IfAbsent: op == opCommitNR})
				if rec.fired != 1 {
					t.Fatalf("fault on %s #%d never fired", op, nth)
				}
				if !errors.Is(err, en.errno) {
					t.Fatalf("Put = %v, want %v", err, en.errno)
				}
				if got := blob.IsPermanent(err); got != en.permanent {
					t.Fatalf("IsPermanent(%v) = %v, want %v", err, got, en.permanent)
				}
				if rec.seen[opFsync] > 1 {
					t.Fatalf("fsync called %d times: a failed fsync must not be retried", rec.seen[opFsync])
				}
				finals, temps := listFiles(t, s.Root())
				if len(finals) != 0 || len(temps) != 0 {
					t.Fatalf("after a failed Put: objects %v, temp files %v; want none", finals, temps)
				}
				// The storage works again once the fault is gone.
				rec.failOp = ""
				if err := s.Put(ctx, "dir/obj", data, blob.PutOptions{}); err != nil {
					t.Fatalf("Put after the fault: %v", err)
				}
				got, err := s.Get(ctx, "dir/obj", 0, -1)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("Get after the fault: %v", err)
				}
			})
		}
	}
}

// mountTmpfs mounts a tmpfs of the given size on a new directory, or skips
// when the test may not mount (not root, no CAP_SYS_ADMIN). The hook-based
// TestInjectedFaultsLeaveNothing covers the same paths everywhere.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); the injected-fault tests cover ENOSPC/EROFS", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func TestFullFileSystem(t *testing.T) {
	ctx := context.Background()
	dir := mountTmpfs(t, "1m")
	s, err := Open(filepath.Join(dir, "repo"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	small := blobtest.Content("small", 100<<10)
	if err := s.Put(ctx, "keep", small, blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	err = s.Put(ctx, "data/too-big", blobtest.Content("big", 2<<20), blob.PutOptions{})
	if !errors.Is(err, syscall.ENOSPC) || !blob.IsPermanent(err) {
		t.Fatalf("Put on a full file system = %v, want permanent ENOSPC", err)
	}
	finals, temps := listFiles(t, s.Root())
	if len(temps) != 0 || len(finals) != 1 || finals[0] != "keep" {
		t.Fatalf("after ENOSPC: objects %v, temps %v; want only keep", finals, temps)
	}
	// Reads and deletes work on the full volume; space comes back.
	if got, err := s.Get(ctx, "keep", 0, -1); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("Get on full volume: %v", err)
	}
	if err := s.Delete(ctx, "keep"); err != nil {
		t.Fatalf("Delete on full volume: %v", err)
	}
	if err := s.Put(ctx, "data/fits", small, blob.PutOptions{}); err != nil {
		t.Fatalf("Put after freeing space: %v", err)
	}
}

func TestReadOnlyFileSystem(t *testing.T) {
	ctx := context.Background()
	dir := mountTmpfs(t, "4m")
	s, err := Open(filepath.Join(dir, "repo"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "keep", []byte("k"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("mount", "-o", "remount,rw", dir).Run() })
	for _, name := range []string{"new-object", "newdir/obj"} {
		err := s.Put(ctx, name, []byte("x"), blob.PutOptions{})
		if !errors.Is(err, syscall.EROFS) || !blob.IsPermanent(err) {
			t.Fatalf("Put(%s) on read-only fs = %v, want permanent EROFS", name, err)
		}
	}
	finals, temps := listFiles(t, s.Root())
	if len(temps) != 0 || len(finals) != 1 {
		t.Fatalf("after EROFS: objects %v, temps %v; want only keep", finals, temps)
	}
	if got, err := s.Get(ctx, "keep", 0, -1); err != nil || string(got) != "k" {
		t.Fatalf("Get on read-only fs = %q, %v", got, err)
	}
}

func TestReadOnlyDirectoryAsUnprivileged(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; TestReadOnlyFileSystem and the injected EACCES cover this")
	}
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.Root(), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(s.Root(), 0o755) })
	err = s.Put(ctx, "x", []byte("x"), blob.PutOptions{})
	if !errors.Is(err, syscall.EACCES) || !blob.IsPermanent(err) {
		t.Fatalf("Put into read-only directory = %v, want permanent EACCES", err)
	}
	finals, temps := listFiles(t, s.Root())
	if len(finals)+len(temps) != 0 {
		t.Fatalf("files left: %v %v", finals, temps)
	}
}
