package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// makeSample writes a small tree with every kind of entry the verifier
// records.
func makeSample(t *testing.T, root string) {
	t.Helper()
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	files := map[string]string{
		"a.txt":       "alpha\n",
		"dir/b.bin":   strings.Repeat("b", 70000),
		"dir/sub/c":   "",
		"link/target": "t",
		"hl/one":      "linked",
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(root, "hl/one"), filepath.Join(root, "hl/two")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", filepath.Join(root, "link/rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/dangling", filepath.Join(root, "link/dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	// mtimes last, deepest first, so that creating entries does not move
	// their parents' times afterwards.
	for _, p := range []string{"a.txt", "dir/b.bin", "dir/sub/c", "link/target", "hl/one", "dir/sub", "dir", "link", "hl", "empty"} {
		if err := os.Chtimes(filepath.Join(root, p), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func scan(t *testing.T, root string) Tree {
	t.Helper()
	tr, err := ScanTree(context.Background(), root, 2)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestCompare(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	makeSample(t, src)
	srcTree := scan(t, src)
	if n, b := srcTree.Files(); n != 6 || b != int64(6+70000+0+1+6+6) {
		t.Fatalf("source files %d, %d bytes", n, b)
	}

	setTime := func(p string) error {
		mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
		return os.Chtimes(p, mtime, mtime)
	}
	tests := []struct {
		name    string
		change  func(root string) error
		check   func(d Diff) bool
		data    bool // a data mismatch is expected
		example string
	}{
		{"identical", func(string) error { return nil }, func(d Diff) bool { return d.OK() }, false, ""},
		{"content same size", func(r string) error {
			p := filepath.Join(r, "dir/b.bin")
			if err := os.WriteFile(p, []byte(strings.Repeat("b", 69999)+"c"), 0o644); err != nil {
				return err
			}
			return setTime(p)
		}, func(d Diff) bool { return d.Content == 1 && d.DataMismatches() == 1 }, true, "dir/b.bin: content differs"},
		{"size", func(r string) error {
			p := filepath.Join(r, "a.txt")
			if err := os.WriteFile(p, []byte("alpha!\n"), 0o644); err != nil {
				return err
			}
			return setTime(p)
		}, func(d Diff) bool { return d.Size == 1 }, true, "a.txt: size 6, restored 7"},
		{"missing file", func(r string) error { return os.Remove(filepath.Join(r, "dir/sub/c")) },
			func(d Diff) bool { return d.Missing == 1 }, true, "dir/sub/c: missing"},
		{"extra file", func(r string) error { return os.WriteFile(filepath.Join(r, "empty/new"), nil, 0o644) },
			func(d Diff) bool { return d.Extra == 1 }, true, "empty/new: not in the source"},
		{"symlink target", func(r string) error {
			p := filepath.Join(r, "link/rel")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("elsewhere", p)
		}, func(d Diff) bool { return d.Symlink == 1 }, true, `link/rel: symlink to "target", restored to "elsewhere"`},
		{"symlink became file", func(r string) error {
			p := filepath.Join(r, "link/dangling")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.WriteFile(p, nil, 0o644)
		}, func(d Diff) bool { return d.Kind == 1 }, true, "link/dangling: type l, restored f"},
		{"mode", func(r string) error { return os.Chmod(filepath.Join(r, "a.txt"), 0o600) },
			func(d Diff) bool { return d.Mode == 1 && d.DataMismatches() == 0 }, false, "a.txt: mode"},
		{"directory mode", func(r string) error { return os.Chmod(filepath.Join(r, "empty"), 0o755) },
			func(d Diff) bool { return d.Mode == 1 }, false, "empty: mode"},
		{"mtime", func(r string) error {
			return os.Chtimes(filepath.Join(r, "dir/sub/c"), time.Unix(1, 0), time.Unix(1, 0))
		}, func(d Diff) bool { return d.MTime == 1 && d.DataMismatches() == 0 }, false, "dir/sub/c: mtime"},
		{"hard link split", func(r string) error {
			p := filepath.Join(r, "hl/two")
			if err := os.Remove(p); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte("linked"), 0o644); err != nil {
				return err
			}
			if err := setTime(p); err != nil {
				return err
			}
			return setTime(filepath.Join(r, "hl"))
		}, func(d Diff) bool { return d.HardLink == 1 && d.DataMismatches() == 0 }, false, `hl/two: hard-link group "hl/one", restored "hl/two"`},
		{"new hard link", func(r string) error {
			if err := os.Remove(filepath.Join(r, "link/target")); err != nil {
				return err
			}
			if err := os.Link(filepath.Join(r, "a.txt"), filepath.Join(r, "link/target")); err != nil {
				return err
			}
			// a.txt's content differs from link/target's, so this also
			// changes data; the point is the link structure.
			return setTime(filepath.Join(r, "link"))
		}, func(d Diff) bool { return d.HardLink == 1 }, true, `link/target: hard-link group "link/target", restored "a.txt"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "restored")
			makeSample(t, dst)
			if err := tc.change(dst); err != nil {
				t.Fatal(err)
			}
			d := Compare(srcTree, scan(t, dst))
			if !tc.check(d) {
				t.Errorf("diff %+v", d)
			}
			if got := d.DataMismatches() > 0; got != tc.data {
				t.Errorf("data mismatch %v, want %v: %s", got, tc.data, d.Summary())
			}
			if tc.data && !strings.HasPrefix(d.Summary(), "DATA MISMATCH") {
				t.Errorf("summary %q does not shout", d.Summary())
			}
			if tc.example != "" && !strings.Contains(strings.Join(d.Examples, "\n"), tc.example) {
				t.Errorf("examples %q lack %q", d.Examples, tc.example)
			}
		})
	}
}

func TestCompareCapsExamples(t *testing.T) {
	src := Tree{}
	for i := range 100 {
		src[strings.Repeat("x", i+1)] = Entry{Kind: KindFile, Size: 1}
	}
	d := Compare(src, Tree{})
	if d.Missing != 100 || len(d.Examples) != maxExamples {
		t.Errorf("missing %d, %d examples", d.Missing, len(d.Examples))
	}
}

func TestScanTreeDoesNotFollowSymlinks(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	tr := scan(t, root)
	if len(tr) != 2 || tr["out"].Kind != KindSymlink || tr["out"].Target != outside {
		t.Errorf("tree %+v", tr)
	}
}
