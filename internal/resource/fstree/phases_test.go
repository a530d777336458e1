package fstree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
	"coffer/internal/testutil"
)

// observingLoader runs a check whenever a data blob is loaded, i.e. while
// the restore is writing into staging.
type observingLoader struct {
	Loader
	mu    sync.Mutex
	check func()
}

func (o *observingLoader) LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	if t == repository.DataBlob {
		o.mu.Lock()
		o.check()
		o.mu.Unlock()
	}
	return o.Loader.LoadBlob(ctx, t, id, buf)
}

// TestStagingModesDuringRestore checks K-9: while data is being written,
// staged files are 0600 and directories 0700 whatever the snapshot says.
func TestStagingModesDuringRestore(t *testing.T) {
	src := t.TempDir()
	for _, p := range []string{"a/f1", "a/f2", "b/c/f3", "f4"} {
		writeFile(t, filepath.Join(src, p), []byte("data "+p), 0o4777)
	}
	if err := os.Chmod(filepath.Join(src, "a"), 0o777); err != nil {
		t.Fatal(err)
	}
	repo := newRepo(t)
	root := doBackup(t, repo, src, BackupOptions{}).Root
	target := t.TempDir()
	stage := filepath.Join(target, StagingPrefix+"modes")
	checks := 0
	var bad []string
	ol := &observingLoader{Loader: repo, check: func() {
		checks++
		_ = filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil //nolint:nilerr // entries appear and vanish while workers run
			}
			fi, err := d.Info()
			if err != nil {
				return nil //nolint:nilerr
			}
			want := os.FileMode(0o600)
			if d.IsDir() {
				want = os.ModeDir | 0o700
			}
			if fi.Mode() != want {
				bad = append(bad, p+" "+fi.Mode().String())
			}
			return nil
		})
	}}
	if _, err := Restore(context.Background(), ol, root, RestoreOptions{TargetRoot: target, Dest: "r", StagingID: "modes", Workers: 1}); err != nil {
		t.Fatal(err)
	}
	if checks != 4 {
		t.Errorf("%d checks, want 4", checks)
	}
	if len(bad) > 0 {
		t.Errorf("staged entries with final modes before the end: %q", bad)
	}
	fi, err := os.Stat(filepath.Join(target, "r", "a", "f1"))
	if err != nil || fi.Mode() != 0o777 {
		t.Errorf("final mode %v, %v", fi.Mode(), err)
	}
}

// vanishingSaver removes a path the first time it saves file content.
type vanishingSaver struct {
	Saver
	once   sync.Once
	remove string
}

func (v *vanishingSaver) SaveStream(ctx context.Context, rd io.Reader) ([]repository.ID, int64, error) {
	v.once.Do(func() { os.RemoveAll(v.remove) })
	return v.Saver.SaveStream(ctx, rd)
}

// TestVanishedEntryIsAProblem: an entry deleted between listing and reading
// becomes a Problem; the backup goes on and stores the rest. With one
// reader, the walk waits at z/y for a/x, whose content removes zz from the
// already listed root before the walk reaches it.
func TestVanishedEntryIsAProblem(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a", "x"), []byte("x"), 0o644)
	writeFile(t, filepath.Join(src, "z", "y"), []byte("y"), 0o644)
	writeFile(t, filepath.Join(src, "zz"), []byte("zz"), 0o644)
	repo := newRepo(t)
	var res BackupResult
	err := repo.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
		var err error
		res, err = Backup(ctx, &vanishingSaver{Saver: w, remove: filepath.Join(src, "zz")}, repo, src, BackupOptions{Workers: 1})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || res.Problems[0].Path != "/zz" || !errors.Is(res.Problems[0].Err, os.ErrNotExist) {
		t.Fatalf("problems %v", res.Problems)
	}
	target := t.TempDir()
	if _, err := restoreTo(t, repo, res.Root, RestoreOptions{TargetRoot: target, Dest: "r"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(listRel(t, filepath.Join(target, "r")), ","); got != "a,a/x,z,z/y" {
		t.Fatalf("restored %s", got)
	}
}

// TestUnreadableFileIsAProblem needs an unprivileged uid (root reads all).
func TestUnreadableFileIsAProblem(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can read every file; covered by TestVanishedEntryIsAProblem")
	}
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "ok"), []byte("ok"), 0o644)
	writeFile(t, filepath.Join(src, "secret"), []byte("no"), 0o000)
	repo := newRepo(t)
	res := doBackup(t, repo, src, BackupOptions{})
	if len(res.Problems) != 1 || res.Problems[0].Path != "/secret" || !errors.Is(res.Problems[0].Err, os.ErrPermission) {
		t.Fatalf("problems %v", res.Problems)
	}
	if res.Files != 1 {
		t.Fatalf("files %d", res.Files)
	}
}

// TestFaithfulSpecialsAsRoot restores a device node, a FIFO, ownership,
// special bits and a trusted.* xattr in faithful mode (K-5..K-8, root only).
func TestFaithfulSpecialsAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("faithful restore needs root")
	}
	repo := newRepo(t)
	root := craft(t, repo, func(c *crafter) repository.ID {
		f := c.file("suid", []byte("x"))
		f.Mode, f.UID, f.GID = 0o6750, 1001, 1002
		f.Xattrs = []snapshot.Xattr{{Name: "trusted.coffer", Value: []byte("t")}, {Name: "user.coffer", Value: []byte("u")}}
		return c.tree(
			snapshot.Node{Name: "null", Type: snapshot.TypeCharDev, Mode: 0o640, UID: 7, GID: 8, Rdev: uint64(unix.Mkdev(1, 3))},
			snapshot.Node{Name: "pipe", Type: snapshot.TypeFIFO, Mode: 0o604, UID: 9, GID: 10},
			f)
	})
	target := t.TempDir()
	res, err := restoreTo(t, repo, root, RestoreOptions{TargetRoot: target, Dest: "r", Faithful: true})
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			testutil.SkipOrFail(t, "mknod not permitted here: %v", err)
		}
		t.Fatal(err)
	}
	if res.Specials != 2 || len(res.Problems) != 0 {
		t.Errorf("result %+v", res)
	}
	for _, tc := range []struct {
		name     string
		typ      uint32
		mode     uint32
		uid, gid uint32
	}{
		{"null", unix.S_IFCHR, 0o640, 7, 8},
		{"pipe", unix.S_IFIFO, 0o604, 9, 10},
		{"suid", unix.S_IFREG, 0o6750, 1001, 1002},
	} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(target, "r", tc.name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != tc.typ|tc.mode || st.Uid != tc.uid || st.Gid != tc.gid {
			t.Errorf("%s: mode %#o uid %d gid %d", tc.name, st.Mode, st.Uid, st.Gid)
		}
	}
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(target, "r", "suid"), "trusted.coffer", buf); err != nil || string(buf[:n]) != "t" {
		t.Errorf("trusted xattr: %q %v", buf[:n], err)
	}
}

// TestCancelledRestoreLeavesNothing cancels a restore while it writes: Dest
// stays absent and the staging directory is removed.
func TestCancelledRestoreLeavesNothing(t *testing.T) {
	repo := newRepo(t)
	root := craft(t, repo, func(c *crafter) repository.ID {
		var nodes []snapshot.Node
		for i := range 40 {
			nodes = append(nodes, c.file(fmt.Sprintf("f%02d", i), randBytes(uint64(i), 1000)))
		}
		return c.tree(nodes...)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	ol := &observingLoader{Loader: repo, check: func() {
		if n++; n == 10 {
			cancel()
		}
	}}
	target := t.TempDir()
	_, err := Restore(ctx, ol, root, RestoreOptions{TargetRoot: target, Dest: "r", StagingID: "cancel", Workers: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if got := listRel(t, target); len(got) != 0 {
		t.Fatalf("target holds %q", got)
	}
}

func TestProblemsAreCapped(t *testing.T) {
	repo := newRepo(t)
	root := craft(t, repo, func(c *crafter) repository.ID {
		nodes := make([]snapshot.Node, MaxProblems+5)
		for i := range nodes {
			nodes[i] = snapshot.Node{Name: fmt.Sprintf("p%05d", i), Type: snapshot.TypeFIFO, Mode: 0o600}
		}
		return c.tree(nodes...)
	})
	res, err := restoreTo(t, repo, root, RestoreOptions{TargetRoot: t.TempDir(), Dest: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != MaxProblems+1 || res.Problems[MaxProblems].Err.Error() != "5 more problems not listed" {
		t.Fatalf("%d problems, last %v", len(res.Problems), res.Problems[len(res.Problems)-1])
	}
}

// TestDeepLongNames: 200 levels of 255-byte names (a path of ~51 KB, far
// beyond PATH_MAX) restore, back up and restore again (N-4).
func TestDeepLongNames(t *testing.T) {
	repo := newRepo(t)
	var names []string
	root := craft(t, repo, func(c *crafter) repository.ID {
		n := c.file("leaf", []byte("deep"))
		for i := range 200 {
			name := strings.Repeat(string(rune('a'+i%26)), 254) + "\xff"
			names = append([]string{name}, names...)
			n = c.dir(name, n)
		}
		return c.tree(n)
	})
	leaf := strings.Join(append(names, "leaf"), "/")
	target := t.TempDir()
	if _, err := restoreTo(t, repo, root, RestoreOptions{TargetRoot: target, Dest: "r1"}); err != nil {
		t.Fatal(err)
	}
	bres := doBackup(t, repo, filepath.Join(target, "r1"), BackupOptions{})
	if len(bres.Problems) != 0 || bres.Files != 1 || bres.Dirs != 200 {
		t.Fatalf("backup of the deep tree: %+v", bres)
	}
	if _, err := restoreTo(t, repo, bres.Root, RestoreOptions{TargetRoot: target, Dest: "r2", StagingID: "second"}); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(target)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := r.ReadFile("r2/" + leaf)
	if err != nil || string(data) != "deep" {
		t.Fatalf("leaf: %q, %v", data, err)
	}
}

// TestTreeBombFailsBeforeWriting: directories sharing one subtree describe
// 20^5 entries with a handful of blobs; the restore stops in planning.
func TestTreeBombFailsBeforeWriting(t *testing.T) {
	repo := newRepo(t)
	root := craft(t, repo, func(c *crafter) repository.ID {
		level := []snapshot.Node{c.file("f", []byte("x"))}
		for range 5 {
			sub := c.tree(level...)
			level = nil
			for i := range 20 {
				level = append(level, snapshot.Node{Name: fmt.Sprintf("d%02d", i), Type: snapshot.TypeDir, Mode: 0o755, Subtree: sub})
			}
		}
		return c.tree(level...)
	})
	for _, include := range [][]string{nil, {"/nothing-matches"}} {
		target := t.TempDir()
		_, err := restoreTo(t, repo, root, RestoreOptions{TargetRoot: target, Dest: "r", MaxEntries: 10000, Include: include})
		if !errors.Is(err, ErrInsufficientSpace) {
			t.Fatalf("include %q: err = %v", include, err)
		}
		if got := listRel(t, target); len(got) != 0 {
			t.Fatalf("target holds %q", got)
		}
	}
}
