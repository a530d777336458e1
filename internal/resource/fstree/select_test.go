package fstree

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"coffer/internal/repository"
	"coffer/internal/resource/fstree/fstreetest"
)

func selectionSource(t *testing.T) (string, *repository.Repository, repository.ID) {
	t.Helper()
	src := t.TempDir()
	for _, p := range []string{"a/x.txt", "a/y.log", "a/sub/z.txt", "b/w.txt", "b/deep/v.log", "top.txt"} {
		writeFile(t, filepath.Join(src, p), []byte("content of "+p), 0o644)
	}
	if err := os.Mkdir(filepath.Join(src, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	repo := newRepo(t)
	return src, repo, doBackup(t, repo, src, BackupOptions{}).Root
}

func listRel(t *testing.T, dir string) []string {
	t.Helper()
	m, err := fstreetest.Walk(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rel := range m {
		if rel != "" {
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out
}

func TestSelection(t *testing.T) {
	src, repo, root := selectionSource(t)
	for _, tc := range []struct {
		name             string
		items            []string
		include, exclude []string
		want             []string
	}{
		{"one file", []string{"/a/x.txt"}, nil, nil, []string{"a", "a/x.txt"}},
		{"one dir", []string{"/a"}, nil, nil, []string{"a", "a/sub", "a/sub/z.txt", "a/x.txt", "a/y.log"}},
		{"several", []string{"/a/sub", "/top.txt", "/c"}, nil, nil, []string{"a", "a/sub", "a/sub/z.txt", "c", "top.txt"}},
		{"include txt", nil, []string{"*.txt"}, nil, []string{"a", "a/sub", "a/sub/z.txt", "a/x.txt", "b", "b/w.txt", "top.txt"}},
		{"exclude logs and a dir", nil, nil, []string{"*.log", "/b/deep"}, []string{"a", "a/sub", "a/sub/z.txt", "a/x.txt", "b", "b/w.txt", "c", "top.txt"}},
		{"include doublestar, exclude dir", nil, []string{"/a/**"}, []string{"sub"}, []string{"a", "a/x.txt", "a/y.log"}},
		{"item with exclude", []string{"/a"}, nil, []string{"*.log"}, []string{"a", "a/sub", "a/sub/z.txt", "a/x.txt"}},
		{"item with include", []string{"/b"}, []string{"**/deep/*"}, nil, []string{"b", "b/deep", "b/deep/v.log"}},
		{"include empty dir", nil, []string{"/c"}, nil, []string{"c"}},
		{"question and class", nil, []string{"/?/[wx].txt"}, nil, []string{"a", "a/x.txt", "b", "b/w.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := t.TempDir()
			_, err := restoreTo(t, repo, root, RestoreOptions{TargetRoot: target, Dest: "r", Items: tc.items, Include: tc.include, Exclude: tc.exclude})
			if err != nil {
				t.Fatal(err)
			}
			if got := listRel(t, filepath.Join(target, "r")); !slices.Equal(got, tc.want) {
				t.Fatalf("restored %q, want %q", got, tc.want)
			}
			for _, rel := range tc.want {
				a, _ := os.ReadFile(filepath.Join(src, rel))
				b, _ := os.ReadFile(filepath.Join(target, "r", rel))
				if string(a) != string(b) {
					t.Errorf("%s: content %q != %q", rel, b, a)
				}
			}
		})
	}
}

func TestCheckItems(t *testing.T) {
	_, repo, root := selectionSource(t)
	for _, tc := range []struct {
		items   []string
		wantErr error
	}{
		{[]string{"/a/x.txt"}, nil},
		{[]string{"/a", "/top.txt", "/c"}, nil},
		{[]string{"/missing"}, ErrItemNotFound},
		{[]string{"/top.txt/x"}, ErrItemNotFound},
		{[]string{"/a/sub/nope"}, ErrItemNotFound},
		{[]string{"/a/../top.txt"}, ErrInvalidItem},
		{[]string{"/a", "/a"}, ErrInvalidItem},
		{[]string{"/a", "/a/x.txt"}, ErrInvalidItem},
		{[]string{"a"}, ErrInvalidItem},
	} {
		err := CheckItems(context.Background(), repo, root, tc.items)
		if (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
			t.Errorf("CheckItems(%q) = %v, want %v", tc.items, err, tc.wantErr)
		}
	}
	// A restore with an item absent from the snapshot fails, writing nothing.
	target := t.TempDir()
	if _, err := restoreTo(t, repo, root, RestoreOptions{TargetRoot: target, Dest: "r", Items: []string{"/nope"}}); !errors.Is(err, ErrHostileEntry) {
		t.Fatalf("err = %v", err)
	}
	if got := listRel(t, target); len(got) != 0 {
		t.Fatalf("target holds %q", got)
	}
}

func TestConflictPolicies(t *testing.T) {
	src, repo, root := selectionSource(t)
	old := time.Unix(1_000_000_000, 0)
	future := time.Now().Add(24 * time.Hour)
	prepare := func(t *testing.T) string {
		target := t.TempDir()
		d := filepath.Join(target, "r")
		writeFile(t, filepath.Join(d, "a/x.txt"), []byte("old local"), 0o644)
		writeFile(t, filepath.Join(d, "top.txt"), []byte("newer local"), 0o644)
		writeFile(t, filepath.Join(d, "b"), []byte("a file where the snapshot has a dir"), 0o644)
		writeFile(t, filepath.Join(d, "extra"), []byte("not in snapshot"), 0o644)
		for p, mt := range map[string]time.Time{"a/x.txt": old, "top.txt": future, "b": old} {
			if err := os.Chtimes(filepath.Join(d, p), mt, mt); err != nil {
				t.Fatal(err)
			}
		}
		return target
	}
	read := func(t *testing.T, p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	snap := func(rel string) string { return read(t, filepath.Join(src, rel)) }
	for _, tc := range []struct {
		policy        ConflictPolicy
		x, top, bFile string
		skipped       int64
	}{
		{SkipExisting, "old local", "newer local", "a file where the snapshot has a dir", 3},
		{OverwriteExisting, snap("a/x.txt"), snap("top.txt"), "", 0},
		{OverwriteIfNewer, snap("a/x.txt"), "newer local", "", 1},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			target := prepare(t)
			d := filepath.Join(target, "r")
			res, err := restoreTo(t, repo, root, RestoreOptions{TargetRoot: target, Dest: "r", ConflictPolicy: tc.policy})
			if err != nil {
				t.Fatal(err)
			}
			if got := read(t, filepath.Join(d, "a/x.txt")); got != tc.x {
				t.Errorf("a/x.txt = %q, want %q", got, tc.x)
			}
			if got := read(t, filepath.Join(d, "top.txt")); got != tc.top {
				t.Errorf("top.txt = %q, want %q", got, tc.top)
			}
			if tc.bFile != "" {
				if got := read(t, filepath.Join(d, "b")); got != tc.bFile {
					t.Errorf("b = %q", got)
				}
			} else if got := read(t, filepath.Join(d, "b/w.txt")); got != snap("b/w.txt") {
				t.Errorf("b/w.txt = %q", got)
			}
			if got := read(t, filepath.Join(d, "extra")); got != "not in snapshot" {
				t.Errorf("extra = %q", got)
			}
			if got := read(t, filepath.Join(d, "a/sub/z.txt")); got != snap("a/sub/z.txt") {
				t.Errorf("new file a/sub/z.txt = %q", got)
			}
			if res.Skipped != tc.skipped {
				t.Errorf("skipped %d, want %d", res.Skipped, tc.skipped)
			}
			assertNoStaging(t, target)
		})
	}
	t.Run("no policy, dest exists", func(t *testing.T) {
		target := prepare(t)
		if _, err := restoreTo(t, repo, root, RestoreOptions{TargetRoot: target, Dest: "r"}); !errors.Is(err, ErrDestExists) {
			t.Fatalf("err = %v", err)
		}
	})
}
