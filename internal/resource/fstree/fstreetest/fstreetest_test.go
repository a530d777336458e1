package fstreetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func mk(t *testing.T, root string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{"a": "A", "d/b": "B"} {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(root, "a"), filepath.Join(root, "d", "a2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(root, "l")); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1_600_000_000, 42)
	for _, p := range []string{"a", "d/b", "d", ""} {
		if err := os.Chtimes(filepath.Join(root, p), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	// The symlink's own mtime too, so that two trees made by mk are equal
	// whatever the clock did between them.
	ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, "l"), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

func TestCompareTreesFindsEachDifference(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, b string)
		want   string
	}{
		{"equal", func(*testing.T, string) {}, ""},
		{"content", func(t *testing.T, b string) { _ = os.WriteFile(filepath.Join(b, "d/b"), []byte("X"), 0o644) }, "content differs"},
		{"mode", func(t *testing.T, b string) { _ = os.Chmod(filepath.Join(b, "d/b"), 0o600) }, "mode"},
		{"missing", func(t *testing.T, b string) { os.Remove(filepath.Join(b, "d/b")) }, "missing"},
		{"extra", func(t *testing.T, b string) { _ = os.WriteFile(filepath.Join(b, "new"), nil, 0o644) }, "unexpected entry"},
		{"symlink", func(t *testing.T, b string) {
			os.Remove(filepath.Join(b, "l"))
			_ = os.Symlink("b", filepath.Join(b, "l"))
		}, "symlink target"},
		{"mtime", func(t *testing.T, b string) { _ = os.Chtimes(filepath.Join(b, "a"), time.Now(), time.Now()) }, "mtime"},
		{"hard link broken", func(t *testing.T, b string) {
			os.Remove(filepath.Join(b, "d/a2"))
			_ = os.WriteFile(filepath.Join(b, "d/a2"), []byte("A"), 0o644)
		}, "hard link groups"},
		{"type", func(t *testing.T, b string) {
			os.Remove(filepath.Join(b, "d/b"))
			_ = os.Mkdir(filepath.Join(b, "d/b"), 0o755)
		}, "type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := t.TempDir(), t.TempDir()
			mk(t, a)
			mk(t, b)
			tc.change(t, b)
			diffs, err := CompareTrees(a, b, CompareOptions{MTime: true})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(diffs, "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("diffs %q, want one containing %q", got, tc.want)
			}
		})
	}
}

func TestSentinelSeesChanges(t *testing.T) {
	base := t.TempDir()
	mk(t, base)
	if err := os.Mkdir(filepath.Join(base, "target"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := RecordSentinel(base, "target")
	if err != nil {
		t.Fatal(err)
	}
	// Changes inside the excluded subtree are not reported.
	if err := os.WriteFile(filepath.Join(base, "target", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Changes("target"); err != nil || len(c) != 0 {
		t.Fatalf("changes %q, %v", c, err)
	}
	if err := os.Chmod(filepath.Join(base, "d", "b"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "created"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := s.Changes("target")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(c, "\n")
	if !strings.Contains(joined, `"d/b" changed`) || !strings.Contains(joined, `"created" created`) {
		t.Fatalf("changes %q", c)
	}
}
