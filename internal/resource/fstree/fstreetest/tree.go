package fstreetest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// WriteFile writes data to p with mode (creating the parent directories),
// failing the test on error.
func WriteFile(tb testing.TB, p string, data []byte, mode os.FileMode) {
	tb.Helper()
	check(tb, os.MkdirAll(filepath.Dir(p), 0o755))
	check(tb, os.WriteFile(p, data, mode))
	check(tb, os.Chmod(p, mode))
}

// PseudoRandom returns n deterministic, incompressible bytes for seed.
func PseudoRandom(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// MakeTree builds a tree with every kind of entry a file-system backup
// keeps: files of several sizes (big.bin spans several chunks), an empty
// file and directory, a symlink, a hard link, modes, an extended attribute
// (where the file system takes user.* attributes) and distinct nanosecond
// times.
func MakeTree(tb testing.TB, root string) {
	tb.Helper()
	WriteFile(tb, filepath.Join(root, "empty"), nil, 0o644)
	WriteFile(tb, filepath.Join(root, "small.txt"), []byte("hello\n"), 0o640)
	WriteFile(tb, filepath.Join(root, "big.bin"), PseudoRandom(1, 5<<20+17), 0o600)
	WriteFile(tb, filepath.Join(root, "dir", "a.go"), PseudoRandom(2, 5000), 0o644)
	WriteFile(tb, filepath.Join(root, "dir", "sub", "b.txt"), bytes.Repeat([]byte("x"), 70000), 0o755)
	WriteFile(tb, filepath.Join(root, "dir", "sub", "c.go"), []byte("package c\n"), 0o644)
	WriteFile(tb, filepath.Join(root, "vendor", "v.go"), []byte("package v\n"), 0o644)
	WriteFile(tb, filepath.Join(root, "docs", "readme.md"), []byte("# docs\n"), 0o644)
	check(tb, os.MkdirAll(filepath.Join(root, "emptydir"), 0o750))
	check(tb, os.Symlink("../small.txt", filepath.Join(root, "dir", "link")))
	check(tb, os.Link(filepath.Join(root, "small.txt"), filepath.Join(root, "dir", "hard")))
	_ = unix.Setxattr(filepath.Join(root, "docs", "readme.md"), "user.coffer", []byte("v1"), 0) // best effort
	SetTimes(tb, root)
}

// SetTimes gives every entry below root (root included) distinct
// nanosecond access and modification times in the past, children first.
func SetTimes(tb testing.TB, root string) {
	tb.Helper()
	var paths []string
	check(tb, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		ns := int64(1_600_000_000_000_000_000) + int64(i)*1_000_000_007 + 123
		ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
		check(tb, unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func check(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
