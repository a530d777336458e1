package fstree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource/fstree/fstreetest"
)

// attackEnv is a base directory holding "outside" (must never change) and
// "target" (the restore's TargetRoot).
type attackEnv struct {
	base, outside, target string
	sentinel              *fstreetest.Sentinel
}

func newAttackEnv(t *testing.T) *attackEnv {
	t.Helper()
	base := t.TempDir()
	e := &attackEnv{base: base, outside: filepath.Join(base, "outside"), target: filepath.Join(base, "target")}
	writeFile(t, filepath.Join(e.outside, "secret"), []byte("do not touch"), 0o600)
	writeFile(t, filepath.Join(e.outside, "dir", "file"), []byte("also not"), 0o644)
	if err := os.Mkdir(e.target, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *attackEnv) record(t *testing.T) {
	t.Helper()
	s, err := fstreetest.RecordSentinel(e.base, "target")
	if err != nil {
		t.Fatal(err)
	}
	e.sentinel = s
}

func (e *attackEnv) check(t *testing.T) {
	t.Helper()
	changes, err := e.sentinel.Changes("target")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		t.Errorf("outside the target root: %s", c)
	}
}

func TestPathAttacks(t *testing.T) {
	repo := newRepo(t)
	big := make([]byte, 100)
	type tc struct {
		name    string
		build   func(c *crafter, e *attackEnv) repository.ID
		opts    func(o *RestoreOptions, e *attackEnv)
		prepare func(t *testing.T, e *attackEnv)
		wantErr error // nil: must succeed
		after   func(t *testing.T, e *attackEnv, res RestoreResult)
	}
	hostile := func(name string, nodes func(c *crafter, e *attackEnv) []snapshot.Node) tc {
		return tc{name: name, build: func(c *crafter, e *attackEnv) repository.ID { return c.tree(nodes(c, e)...) }, wantErr: ErrHostileEntry}
	}
	dest := func(e *attackEnv) string { return filepath.Join(e.target, "r") }
	cases := []tc{
		hostile("name dotdot", func(c *crafter, e *attackEnv) []snapshot.Node { return []snapshot.Node{c.file("..", big)} }),
		hostile("name dot", func(c *crafter, e *attackEnv) []snapshot.Node { return []snapshot.Node{c.file(".", big)} }),
		hostile("empty name", func(c *crafter, e *attackEnv) []snapshot.Node { return []snapshot.Node{c.file("", big)} }),
		hostile("name with slash", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{c.dir("a"), c.file("a/b", big)}
		}),
		hostile("traversal name", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{c.file("../../outside/secret", big)}
		}),
		hostile("absolute name", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{c.file(e.outside+"/secret", big)}
		}),
		hostile("NUL in name", func(c *crafter, e *attackEnv) []snapshot.Node { return []snapshot.Node{c.file("a\x00b", big)} }),
		hostile("256-byte name", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{c.file(strings.Repeat("n", 256), big)}
		}),
		hostile("duplicate files", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{c.file("x", big), c.file("x", []byte("other"))}
		}),
		hostile("symlink then dir of same name", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{c.dir("evil", c.file("pwn", big)), symlinkNode("evil", e.outside)}
		}),
		hostile("symlink then child below it", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{symlinkNode("evil", "../outside"), c.file("evil/pwn", big)}
		}),
		hostile("dotdot dir deep", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{c.dir("a", c.dir("..", c.dir("..", c.file("pwn", big))))}
		}),
		hostile("absurd size", func(c *crafter, e *attackEnv) []snapshot.Node {
			n := c.file("huge", big)
			n.Size = 1 << 60
			return []snapshot.Node{n}
		}),
		hostile("size larger than content", func(c *crafter, e *attackEnv) []snapshot.Node {
			n := c.file("lie", big)
			n.Size = 1 << 30
			return []snapshot.Node{n}
		}),
		hostile("extent beyond size", func(c *crafter, e *attackEnv) []snapshot.Node {
			n := c.file("sp", big)
			n.Extents = []snapshot.Extent{{Offset: 1 << 20, Length: 100}}
			return []snapshot.Node{n}
		}),
		hostile("overlapping extents", func(c *crafter, e *attackEnv) []snapshot.Node {
			n := c.file("sp", big)
			n.Size = 1000
			n.Extents = []snapshot.Extent{{Offset: 0, Length: 50}, {Offset: 10, Length: 50}}
			return []snapshot.Node{n}
		}),
		hostile("dir without subtree", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{{Name: "d", Type: snapshot.TypeDir}}
		}),
		hostile("unknown type", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{{Name: "u", Type: 99}}
		}),
		hostile("symlink with content", func(c *crafter, e *attackEnv) []snapshot.Node {
			n := c.file("l", big)
			n.Type, n.LinkTarget = snapshot.TypeSymlink, "x"
			return []snapshot.Node{n}
		}),
		hostile("NUL in symlink target", func(c *crafter, e *attackEnv) []snapshot.Node {
			return []snapshot.Node{symlinkNode("l", "a\x00b")}
		}),
		hostile("missing content blob", func(c *crafter, e *attackEnv) []snapshot.Node {
			n := c.file("m", big)
			n.Content = []repository.ID{{0xde, 0xad}}
			return []snapshot.Node{n}
		}),
		{name: "absolute symlink target restored as link, not followed", build: func(c *crafter, e *attackEnv) repository.ID {
			return c.tree(symlinkNode("abs", filepath.Join(e.outside, "secret")), symlinkNode("dir", e.outside), symlinkNode("up", "../../.."))
		}, after: func(t *testing.T, e *attackEnv, _ RestoreResult) {
			if l, err := os.Readlink(filepath.Join(dest(e), "abs")); err != nil || l != filepath.Join(e.outside, "secret") {
				t.Errorf("abs link = %q, %v", l, err)
			}
		}},
		{name: "symlinks with entries in sibling dirs", build: func(c *crafter, e *attackEnv) repository.ID {
			return c.tree(c.dir("a", c.file("f", big)), symlinkNode("b", e.outside), c.dir("c", symlinkNode("d", "../b"), c.file("e", big)))
		}},
		{name: "hard link whose first occurrence is excluded", build: func(c *crafter, e *attackEnv) repository.ID {
			a, b := c.file("a", []byte("shared")), c.file("b", []byte("shared"))
			a.Links, b.Links, a.Inode, b.Inode = 2, 2, 77, 77
			return c.tree(a, b)
		}, opts: func(o *RestoreOptions, e *attackEnv) { o.Exclude = []string{"/a"} },
			after: func(t *testing.T, e *attackEnv, _ RestoreResult) {
				if b, err := os.ReadFile(filepath.Join(dest(e), "b")); err != nil || string(b) != "shared" {
					t.Errorf("b = %q, %v", b, err)
				}
			}},
		{name: "hard link group with a symlink member", build: func(c *crafter, e *attackEnv) repository.ID {
			a := c.file("a", []byte("data"))
			l := symlinkNode("l", filepath.Join(e.outside, "secret"))
			a.Links, l.Links, a.Inode, l.Inode = 2, 2, 5, 5
			return c.tree(a, l)
		}, after: func(t *testing.T, e *attackEnv, _ RestoreResult) {
			if fi, err := os.Lstat(filepath.Join(dest(e), "l")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("l: %v %v", fi, err)
			}
		}},
		{name: "device node and FIFO skipped by default", build: func(c *crafter, e *attackEnv) repository.ID {
			return c.tree(snapshot.Node{Name: "null", Type: snapshot.TypeCharDev, Mode: 0o666, Rdev: uint64(unix.Mkdev(1, 3))},
				snapshot.Node{Name: "p", Type: snapshot.TypeFIFO, Mode: 0o644})
		}, after: func(t *testing.T, e *attackEnv, res RestoreResult) {
			if len(res.Problems) != 2 {
				t.Errorf("problems %v", res.Problems)
			}
			if got := listRel(t, dest(e)); len(got) != 0 {
				t.Errorf("restored %q", got)
			}
		}},
		{name: "setuid and privileged xattrs stripped by default", build: func(c *crafter, e *attackEnv) repository.ID {
			n := c.file("suid", big)
			n.Mode = 0o6755
			n.Xattrs = []snapshot.Xattr{{Name: "security.capability", Value: []byte{1, 0, 0, 2}}, {Name: "trusted.x", Value: []byte("t")}}
			d := c.dir("sticky")
			d.Mode = 0o1777
			return c.tree(d, n)
		}, after: func(t *testing.T, e *attackEnv, _ RestoreResult) {
			for _, p := range []string{"suid", "sticky"} {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(dest(e), p), &st); err != nil {
					t.Fatal(err)
				}
				if st.Mode&0o7000 != 0 {
					t.Errorf("%s mode %#o", p, st.Mode)
				}
			}
			buf := make([]byte, 1024)
			n, _ := unix.Llistxattr(filepath.Join(dest(e), "suid"), buf)
			if n > 0 {
				t.Errorf("xattrs restored: %q", buf[:n])
			}
		}},
		{name: "huge sparse file stays sparse", build: func(c *crafter, e *attackEnv) repository.ID {
			n := c.file("sparse", big)
			n.Size = 1 << 40
			n.Extents = []snapshot.Extent{{Offset: 1 << 39, Length: int64(len(big))}}
			return c.tree(n)
		}, after: func(t *testing.T, e *attackEnv, _ RestoreResult) {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(dest(e), "sparse"), &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != 1<<40 || st.Blocks > 64 {
				t.Errorf("size %d blocks %d", st.Size, st.Blocks)
			}
		}},
		{name: "item with dotdot", build: func(c *crafter, e *attackEnv) repository.ID { return c.tree(c.file("f", big)) },
			opts: func(o *RestoreOptions, e *attackEnv) { o.Items = []string{"/../outside/secret"} }, wantErr: ErrInvalidItem},
		{name: "item a/../../x", build: func(c *crafter, e *attackEnv) repository.ID { return c.tree(c.file("f", big)) },
			opts: func(o *RestoreOptions, e *attackEnv) { o.Items = []string{"/f/../../x"} }, wantErr: ErrInvalidItem},
		{name: "dest with dotdot", build: func(c *crafter, e *attackEnv) repository.ID { return c.tree(c.file("f", big)) },
			opts: func(o *RestoreOptions, e *attackEnv) { o.Dest = "../outside/r" }, wantErr: ErrInvalidOptions},
		{name: "absolute dest", build: func(c *crafter, e *attackEnv) repository.ID { return c.tree(c.file("f", big)) },
			opts: func(o *RestoreOptions, e *attackEnv) { o.Dest = e.outside }, wantErr: ErrInvalidOptions},
		{name: "dest parent is a symlink to outside", build: func(c *crafter, e *attackEnv) repository.ID { return c.tree(c.file("f", big)) },
			prepare: func(t *testing.T, e *attackEnv) {
				if err := os.Symlink(e.outside, filepath.Join(e.target, "via")); err != nil {
					t.Fatal(err)
				}
			},
			opts: func(o *RestoreOptions, e *attackEnv) { o.Dest = "via/r" }, wantErr: errAny},
		{name: "in-place dest is a symlink to outside", build: func(c *crafter, e *attackEnv) repository.ID { return c.tree(c.file("secret", big)) },
			prepare: func(t *testing.T, e *attackEnv) {
				if err := os.Symlink(e.outside, filepath.Join(e.target, "r")); err != nil {
					t.Fatal(err)
				}
			},
			opts: func(o *RestoreOptions, e *attackEnv) { o.ConflictPolicy = OverwriteExisting }, wantErr: ErrDestExists},
		{name: "in-place over pre-planted file and dir symlinks", build: func(c *crafter, e *attackEnv) repository.ID {
			return c.tree(c.dir("d", c.file("file", big)), c.file("f", big), c.dir("keep", c.file("file", big)))
		}, prepare: func(t *testing.T, e *attackEnv) {
			d := filepath.Join(e.target, "r")
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, to := range map[string]string{"f": filepath.Join(e.outside, "secret"), "d": filepath.Join(e.outside, "dir"), "keep": "../../outside/dir"} {
				if err := os.Symlink(to, filepath.Join(d, name)); err != nil {
					t.Fatal(err)
				}
			}
		}, opts: func(o *RestoreOptions, e *attackEnv) { o.ConflictPolicy = OverwriteExisting },
			after: func(t *testing.T, e *attackEnv, _ RestoreResult) {
				for _, p := range []string{"f", "d/file", "keep/file"} {
					if b, err := os.ReadFile(filepath.Join(dest(e), p)); err != nil || len(b) != len(big) {
						t.Errorf("%s: %v", p, err)
					}
				}
			}},
		{name: "in-place skip keeps pre-planted symlinks untouched", build: func(c *crafter, e *attackEnv) repository.ID {
			return c.tree(c.dir("d", c.file("file", big)), c.file("f", big))
		}, prepare: func(t *testing.T, e *attackEnv) {
			d := filepath.Join(e.target, "r")
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, to := range map[string]string{"f": filepath.Join(e.outside, "secret"), "d": filepath.Join(e.outside, "dir")} {
				if err := os.Symlink(to, filepath.Join(d, name)); err != nil {
					t.Fatal(err)
				}
			}
		}, opts: func(o *RestoreOptions, e *attackEnv) { o.ConflictPolicy = OverwriteIfNewer }},
	}
	if len(cases) < 20 {
		t.Fatalf("only %d attack cases", len(cases))
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newAttackEnv(t)
			if c.prepare != nil {
				c.prepare(t, e)
			}
			root := craft(t, repo, func(cr *crafter) repository.ID { return c.build(cr, e) })
			before, err := fstreetest.Walk(e.target)
			if err != nil {
				t.Fatal(err)
			}
			e.record(t)
			opts := RestoreOptions{TargetRoot: e.target, Dest: "r", StagingID: fmt.Sprintf("attack%d", i)}
			if c.opts != nil {
				c.opts(&opts, e)
			}
			res, err := Restore(context.Background(), repo, root, opts)
			switch {
			case c.wantErr == nil && err != nil:
				t.Fatalf("restore failed: %v (%v)", err, res.Problems)
			case errors.Is(c.wantErr, errAny) && err == nil, c.wantErr != nil && !errors.Is(c.wantErr, errAny) && !errors.Is(err, c.wantErr):
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if errors.Is(c.wantErr, ErrHostileEntry) && len(res.Problems) == 0 {
				t.Errorf("hostile entry not listed in Problems")
			}
			if err != nil {
				// A failed restore leaves the target exactly as it was.
				after, werr := fstreetest.Walk(e.target)
				if werr != nil {
					t.Fatal(werr)
				}
				if len(after) != len(before) {
					t.Errorf("target changed by a failed restore: %d entries before, %d after", len(before), len(after))
				}
			}
			if c.after != nil {
				c.after(t, e, res)
			}
			assertNoStaging(t, e.target)
			e.check(t)
		})
	}
}

var errAny = errors.New("any error")

// faultyLoader fails LoadBlob for one data blob (a corrupt pack).
type faultyLoader struct {
	Loader
	bad repository.ID
}

func (f faultyLoader) LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	if id == f.bad {
		return nil, fmt.Errorf("injected: %w", repository.ErrCorrupt)
	}
	return f.Loader.LoadBlob(ctx, t, id, buf)
}

func TestCorruptBlobFailsRestore(t *testing.T) {
	repo := newRepo(t)
	var bad repository.ID
	root := craft(t, repo, func(c *crafter) repository.ID {
		var nodes []snapshot.Node
		for i := range 50 {
			nodes = append(nodes, c.file(fmt.Sprintf("f%02d", i), randBytes(uint64(i), 3000)))
		}
		bad = nodes[37].Content[0]
		return c.tree(c.dir("d", nodes...))
	})
	e := newAttackEnv(t)
	e.record(t)
	_, err := Restore(context.Background(), faultyLoader{repo, bad}, root, RestoreOptions{TargetRoot: e.target, Dest: "r", StagingID: "corrupt"})
	if !errors.Is(err, repository.ErrCorrupt) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Lstat(filepath.Join(e.target, "r")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dest exists after failed restore: %v", err)
	}
	assertNoStaging(t, e.target)
	e.check(t)
	// The same restore without the fault succeeds.
	if _, err := Restore(context.Background(), repo, root, RestoreOptions{TargetRoot: e.target, Dest: "r", StagingID: "corrupt"}); err != nil {
		t.Fatal(err)
	}
}

func TestCleanStaging(t *testing.T) {
	target := t.TempDir()
	writeFile(t, filepath.Join(target, StagingPrefix+"old", "data", "x"), []byte("x"), 0o600)
	writeFile(t, filepath.Join(target, StagingPrefix+"live", "data", "z"), []byte("z"), 0o600)
	writeFile(t, filepath.Join(target, "keep", "y"), []byte("y"), 0o600)
	if err := CleanStaging(target, func(id string) bool { return id == "live" }); err != nil {
		t.Fatal(err)
	}
	want := StagingPrefix + "live," + StagingPrefix + "live/data," + StagingPrefix + "live/data/z,keep,keep/y"
	if got := listRel(t, target); strings.Join(got, ",") != want {
		t.Fatalf("left %q", got)
	}
	if err := CleanStaging(target, nil); err != nil {
		t.Fatal(err)
	}
	if got := listRel(t, target); strings.Join(got, ",") != "keep,keep/y" {
		t.Fatalf("left %q", got)
	}
}

// TestSwapDirForSymlinkDuringRestore flips a staged directory to a symlink
// pointing outside the target root, in a loop, while a restore of a few
// thousand files runs. The restore may fail; nothing outside may change.
func TestSwapDirForSymlinkDuringRestore(t *testing.T) {
	repo := newRepo(t)
	root := craft(t, repo, func(c *crafter) repository.ID {
		var dirs []snapshot.Node
		for d := range 10 {
			var files []snapshot.Node
			for f := range 300 {
				files = append(files, c.file(fmt.Sprintf("f%03d", f), []byte(fmt.Sprintf("%d/%d", d, f))))
			}
			dirs = append(dirs, c.dir(fmt.Sprintf("d%d", d), files...))
		}
		return c.tree(c.dir("top", dirs...))
	})
	for _, mode := range []string{"new", "in-place"} {
		t.Run(mode, func(t *testing.T) {
			e := newAttackEnv(t)
			opts := RestoreOptions{TargetRoot: e.target, Dest: "r", StagingID: "swap"}
			if mode == "in-place" {
				for d := range 10 {
					if err := os.MkdirAll(filepath.Join(e.target, "r", "top", fmt.Sprintf("d%d", d)), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				opts.ConflictPolicy = OverwriteExisting
			}
			e.record(t)
			var stop atomic.Bool
			var flips atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				stage := filepath.Join(e.target, StagingPrefix+"swap", "data", "top")
				// New location: attack the staging tree; in place: attack
				// the existing destination the merge descends into.
				victims := []string{stage}
				if mode == "in-place" {
					victims = []string{filepath.Join(e.target, "r", "top")}
				}
				for i := 0; !stop.Load(); i++ {
					for _, v := range victims {
						for _, d := range []string{filepath.Join(v, fmt.Sprintf("d%d", i%10))} {
							if os.Rename(d, d+".moved") == nil {
								if os.Symlink(e.outside, d) == nil {
									flips.Add(1)
								}
								_ = os.Remove(d)
								_ = os.Rename(d+".moved", d)
							}
						}
					}
				}
			}()
			_, err := Restore(context.Background(), repo, root, opts)
			stop.Store(true)
			wg.Wait()
			t.Logf("restore error (allowed): %v; %d flips", err, flips.Load())
			if flips.Load() == 0 {
				t.Log("the swapper never managed a flip (restore too fast)")
			}
			e.check(t)
		})
	}
}
