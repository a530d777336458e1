package fstree

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/resource/fstree/fstreetest"
)

func restoreTo(t *testing.T, repo *repository.Repository, root repository.ID, opts RestoreOptions) (RestoreResult, error) {
	t.Helper()
	if opts.StagingID == "" {
		opts.StagingID = "job1"
	}
	return Restore(context.Background(), repo, root, opts)
}

func requireDiffs(t *testing.T, diffs []string, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Error(d)
	}
}

func TestRoundTripDefaultMode(t *testing.T) {
	src, target := t.TempDir(), t.TempDir()
	withX := xattrsSupported(t, src)
	if !withX {
		t.Log("temp file system lacks user xattrs; xattr checks skipped")
	}
	makeTree(t, src, withX)
	repo := newRepo(t)
	var progressCalls int
	bres := doBackup(t, repo, src, BackupOptions{Progress: func(Progress) { progressCalls++ }})
	if len(bres.Problems) != 0 {
		t.Fatalf("backup problems: %v", bres.Problems)
	}
	if bres.Specials != 2 || bres.Symlinks != 3 || bres.Files < 12 {
		t.Errorf("counts: %+v", bres)
	}
	if bres.BytesRead > 5<<20 {
		t.Errorf("read %d bytes: holes of the sparse file were read", bres.BytesRead)
	}
	if progressCalls == 0 {
		t.Error("progress never reported")
	}
	var last Progress
	res, err := restoreTo(t, repo, bres.Root, RestoreOptions{TargetRoot: target, Dest: "restored",
		Progress: func(p Progress) { last = p }})
	if err != nil {
		t.Fatalf("restore: %v (problems %v)", err, res.Problems)
	}
	// The backup counts both names of the hard link, the restore writes it once.
	if last.BytesDone != last.BytesTotal || last.BytesTotal != bres.BytesTotal-9000 {
		t.Errorf("final progress %+v, backup total %d", last, bres.BytesTotal)
	}
	// The FIFO and the socket are skipped with a Problem in default mode.
	if len(res.Problems) != 2 || !errors.Is(res.Problems[0].Err, ErrSkippedSpecial) || res.Problems[0].Path != "/fifo" || res.Problems[1].Path != "/sock" {
		t.Errorf("problems: %v", res.Problems)
	}
	opts := fstreetest.CompareOptions{MTime: true, Sparse: true, SparseSlack: 64, Skip: []string{"fifo", "sock"}}
	if withX {
		opts.Xattrs = []string{"user."}
	}
	diffs, err := fstreetest.CompareTrees(src, filepath.Join(target, "restored"), opts)
	requireDiffs(t, diffs, err)
	// Least privilege: no special bits, no chown.
	for _, p := range []string{"setuid", "sticky"} {
		fi, err := os.Lstat(filepath.Join(target, "restored", p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
			t.Errorf("%s restored with special bits %v", p, fi.Mode())
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(target, "restored", "small.txt"), &st); err != nil {
		t.Fatal(err)
	}
	if int(st.Uid) != os.Geteuid() {
		t.Errorf("small.txt owned by %d, want the restoring uid %d", st.Uid, os.Geteuid())
	}
	if err := unix.Lstat(filepath.Join(target, "restored", "sparse"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != sparseSize || st.Blocks*512 > 1<<20 {
		t.Errorf("sparse file: size %d, %d bytes allocated", st.Size, st.Blocks*512)
	}
	assertNoStaging(t, target)
}

func TestRoundTripFaithfulAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("faithful restore needs root")
	}
	src, target := t.TempDir(), t.TempDir()
	withX := xattrsSupported(t, src)
	makeTree(t, src, withX)
	repo := newRepo(t)
	bres := doBackup(t, repo, src, BackupOptions{})
	res, err := restoreTo(t, repo, bres.Root, RestoreOptions{TargetRoot: target, Dest: "r", Faithful: true})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if len(res.Problems) != 0 || res.Specials != 2 || res.HardLinks != 1 {
		t.Errorf("result %+v", res)
	}
	opts := fstreetest.CompareOptions{ModeMask: 0o7777, Owner: true, MTime: true, Sparse: true, SparseSlack: 64}
	if withX {
		opts.Xattrs = []string{"user."}
	}
	diffs, err := fstreetest.CompareTrees(src, filepath.Join(target, "r"), opts)
	requireDiffs(t, diffs, err)
}

func TestFaithfulRejectedForNonRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root")
	}
	_, err := Restore(context.Background(), newRepo(t), repository.ID{1}, RestoreOptions{TargetRoot: t.TempDir(), Dest: "x", StagingID: "j", Faithful: true})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("err = %v", err)
	}
}

func assertNoStaging(t *testing.T, target string) {
	t.Helper()
	ents, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), StagingPrefix) {
			t.Errorf("staging directory %s left behind", e.Name())
		}
	}
}

func TestIncremental(t *testing.T) {
	src := t.TempDir()
	for i := range 20 {
		writeFile(t, filepath.Join(src, "d", string(rune('a'+i))), randBytes(uint64(i), 20000+i), 0o644)
	}
	repo := newRepo(t)
	var last Progress
	first := doBackup(t, repo, src, BackupOptions{Progress: func(p Progress) { last = p }})
	if first.NewFiles != 20 || first.BytesRead != first.BytesTotal {
		t.Fatalf("first backup %+v", first)
	}
	if !last.TotalKnown || last.BytesDone != first.BytesTotal || last.BytesTotal != first.BytesTotal || last.Files != 20 || last.Dirs != 1 {
		t.Errorf("final progress %+v", last)
	}
	second := doBackup(t, repo, src, BackupOptions{Parent: first.Root})
	if second.BytesRead != 0 || second.UnchangedFiles != 20 {
		t.Fatalf("unchanged tree: %+v", second)
	}
	changed := randBytes(99, 12345)
	writeFile(t, filepath.Join(src, "d", "c"), changed, 0o644)
	third := doBackup(t, repo, src, BackupOptions{Parent: second.Root})
	if third.BytesRead != int64(len(changed)) || third.ChangedFiles != 1 || third.UnchangedFiles != 19 {
		t.Fatalf("one changed file: %+v", third)
	}
	target := t.TempDir()
	if _, err := restoreTo(t, repo, third.Root, RestoreOptions{TargetRoot: target, Dest: "r"}); err != nil {
		t.Fatal(err)
	}
	diffs, err := fstreetest.CompareTrees(src, filepath.Join(target, "r"), fstreetest.CompareOptions{MTime: true})
	requireDiffs(t, diffs, err)
}

// mutatingSaver changes a file (mutate) each time, up to left times, right
// before its content is saved, to simulate a writer racing the backup.
type mutatingSaver struct {
	Saver
	mutate func() error
	mu     sync.Mutex
	left   int
}

func (g *mutatingSaver) SaveStream(ctx context.Context, rd io.Reader) ([]repository.ID, int64, error) {
	g.mu.Lock()
	if g.left > 0 {
		g.left--
		if err := g.mutate(); err != nil {
			g.mu.Unlock()
			return nil, 0, err
		}
	}
	g.mu.Unlock()
	return g.Saver.SaveStream(ctx, rd)
}

func TestChangedDuringBackup(t *testing.T) {
	grow := func(p string) func() error {
		return func() error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteString("+more")
			return errors.Join(err, f.Close())
		}
	}
	shrink := func(p string) func() error {
		return func() error {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, max(fi.Size()-2, 5))
		}
	}
	for _, tc := range []struct {
		name       string
		mutate     func(string) func() error
		mutations  int
		wantProble bool
	}{{"grows once", grow, 1, false}, {"grows always", grow, 100, true}, {"shrinks once", shrink, 1, false}, {"shrinks always", shrink, 100, true}} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			p := filepath.Join(src, "grows")
			writeFile(t, p, []byte("start-and-some-more-bytes"), 0o644)
			repo := newRepo(t)
			var res BackupResult
			err := repo.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
				s := &mutatingSaver{Saver: w, mutate: tc.mutate(p), left: tc.mutations}
				var err error
				res, err = Backup(ctx, s, repo, src, BackupOptions{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			gotProblem := len(res.Problems) == 1 && errors.Is(res.Problems[0].Err, ErrChangedDuringBackup)
			if gotProblem != tc.wantProble || (!tc.wantProble && len(res.Problems) != 0) {
				t.Fatalf("problems %v", res.Problems)
			}
			// Whatever was stored restores consistently: size equals content.
			target := t.TempDir()
			if _, err := restoreTo(t, repo, res.Root, RestoreOptions{TargetRoot: target, Dest: "r"}); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(target, "r", "grows"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(got), "start") {
				t.Errorf("restored %q", got)
			}
		})
	}
}
