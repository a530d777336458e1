// Package fstreetest compares directory trees entry by entry and records
// "sentinel" snapshots of a directory to prove that nothing changed in it.
// It is shared by the file-tree tests of several packages.
package fstreetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// CompareOptions selects what CompareTrees checks besides type, content,
// symlink targets and the hard link structure, which are always compared.
type CompareOptions struct {
	// ModeMask selects the mode bits compared (0 means 0o777; use 0o7777 to
	// include setuid/setgid/sticky).
	ModeMask uint32
	Owner    bool // uid and gid
	MTime    bool // mtime to the nanosecond (directories included)
	// Xattrs compares the extended attributes whose names have one of these
	// prefixes (e.g. "user.").
	Xattrs []string
	// Sparse checks that a file of b allocates no more blocks than the
	// matching file of a plus SparseSlack blocks of 512 bytes.
	Sparse      bool
	SparseSlack int64
	// Skip lists root-relative paths (no leading "/") present in a and
	// expected to be missing in b.
	Skip []string
}

// Entry is the lstat view of one entry with a content hash.
type Entry struct {
	Rel    string
	Mode   uint32 // st_mode including the type bits
	UID    uint32
	GID    uint32
	Size   int64
	MTime  int64
	Blocks int64
	Ino    uint64
	Nlink  uint64
	Rdev   uint64
	Hash   string // regular files: sha256 of the content
	Link   string // symlinks: target
	Xattrs map[string]string
}

// Walk lists every entry below root (the root itself as ""), never following
// symlinks, hashing regular files and reading xattrs.
func Walk(root string) (map[string]Entry, error) {
	return walk(root, nil)
}

// walk is Walk with subtrees (root-relative) left out.
func walk(root string, exclude []string) (map[string]Entry, error) {
	out := map[string]Entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			rel = ""
		}
		for _, ex := range exclude {
			if rel == ex {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		e, err := stat(p)
		if err != nil {
			return err
		}
		e.Rel = rel
		out[rel] = e
		return nil
	})
	return out, err
}

func stat(p string) (Entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return Entry{}, fmt.Errorf("lstat %s: %w", p, err)
	}
	e := Entry{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size, MTime: st.Mtim.Nano(),
		Blocks: st.Blocks, Ino: st.Ino, Nlink: uint64(st.Nlink), Rdev: uint64(st.Rdev)}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return Entry{}, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return Entry{}, fmt.Errorf("read %s: %w", p, err)
		}
		e.Hash = hex.EncodeToString(h.Sum(nil))
	case unix.S_IFLNK:
		l, err := os.Readlink(p)
		if err != nil {
			return Entry{}, err
		}
		e.Link = l
	}
	xs, err := xattrs(p)
	if err != nil {
		return Entry{}, err
	}
	e.Xattrs = xs
	return e, nil
}

func xattrs(p string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, fmt.Errorf("listxattr %s: %w", p, err)
	}
	out := map[string]string{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		out[name] = string(v[:m])
	}
	return out, nil
}

// CompareTrees compares the trees at a (the original) and b (the copy) and
// returns one line per difference (nil when equal). The roots themselves are
// compared only by type.
func CompareTrees(a, b string, opts CompareOptions) ([]string, error) {
	ea, err := Walk(a)
	if err != nil {
		return nil, err
	}
	eb, err := Walk(b)
	if err != nil {
		return nil, err
	}
	mask := opts.ModeMask
	if mask == 0 {
		mask = 0o777
	}
	skip := map[string]bool{}
	for _, s := range opts.Skip {
		skip[s] = true
	}
	var diffs []string
	add := func(rel, format string, args ...any) {
		diffs = append(diffs, fmt.Sprintf("%q: ", "/"+rel)+fmt.Sprintf(format, args...))
	}
	// Hard link structure: the set of paths sharing an inode must match.
	groupsA, groupsB := map[uint64][]string{}, map[uint64][]string{}
	for _, rel := range sortedKeys(ea) {
		x := ea[rel]
		y, ok := eb[rel]
		if skip[rel] {
			if ok {
				add(rel, "expected to be missing")
			}
			continue
		}
		if !ok {
			add(rel, "missing")
			continue
		}
		if x.Mode&unix.S_IFMT != y.Mode&unix.S_IFMT {
			add(rel, "type %#o != %#o", x.Mode&unix.S_IFMT, y.Mode&unix.S_IFMT)
			continue
		}
		if rel == "" {
			continue
		}
		isLink := x.Mode&unix.S_IFMT == unix.S_IFLNK
		if !isLink && x.Mode&mask != y.Mode&mask {
			add(rel, "mode %#o != %#o", x.Mode&mask, y.Mode&mask)
		}
		if opts.Owner && (x.UID != y.UID || x.GID != y.GID) {
			add(rel, "owner %d:%d != %d:%d", x.UID, x.GID, y.UID, y.GID)
		}
		if opts.MTime && x.MTime != y.MTime {
			add(rel, "mtime %d != %d", x.MTime, y.MTime)
		}
		if x.Hash != y.Hash || x.Size != y.Size && x.Mode&unix.S_IFMT == unix.S_IFREG {
			add(rel, "content differs (size %d vs %d)", x.Size, y.Size)
		}
		if x.Link != y.Link {
			add(rel, "symlink target %q != %q", x.Link, y.Link)
		}
		if x.Rdev != y.Rdev {
			add(rel, "rdev %d != %d", x.Rdev, y.Rdev)
		}
		for _, pfx := range opts.Xattrs {
			fx, fy := filterX(x.Xattrs, pfx), filterX(y.Xattrs, pfx)
			if fmt.Sprint(fx) != fmt.Sprint(fy) {
				add(rel, "xattrs %v != %v", fx, fy)
			}
		}
		if opts.Sparse && x.Mode&unix.S_IFMT == unix.S_IFREG && y.Blocks > x.Blocks+opts.SparseSlack {
			add(rel, "allocates %d blocks, original %d", y.Blocks, x.Blocks)
		}
		if x.Mode&unix.S_IFMT == unix.S_IFREG && x.Nlink > 1 {
			groupsA[x.Ino] = append(groupsA[x.Ino], rel)
			groupsB[y.Ino] = append(groupsB[y.Ino], rel)
		}
	}
	for _, rel := range sortedKeys(eb) {
		if _, ok := ea[rel]; !ok {
			add(rel, "unexpected entry")
		}
	}
	if ga, gb := groups(groupsA), groups(groupsB); !slices.Equal(ga, gb) {
		diffs = append(diffs, fmt.Sprintf("hard link groups %v != %v", ga, gb))
	}
	return diffs, nil
}

func filterX(m map[string]string, pfx string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if strings.HasPrefix(k, pfx) {
			out[k] = v
		}
	}
	return out
}

func groups(m map[uint64][]string) []string {
	var out []string
	for _, g := range m {
		sort.Strings(g)
		out = append(out, strings.Join(g, "|"))
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]Entry) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Sentinel is a recorded state of a directory tree.
type Sentinel struct {
	root    string
	entries map[string]Entry
}

// RecordSentinel records every entry below root (lstat, content hashes,
// xattrs), skipping the subtrees named in exclude (root-relative, e.g. the
// restore's target root, which is allowed to change).
func RecordSentinel(root string, exclude ...string) (*Sentinel, error) {
	all, err := walk(root, exclude)
	if err != nil {
		return nil, err
	}
	return &Sentinel{root: root, entries: all}, nil
}

// Changes records the tree again and lists every difference (created,
// deleted or changed entries, including mode, owner, times and content).
func (s *Sentinel) Changes(exclude ...string) ([]string, error) {
	now, err := RecordSentinel(s.root, exclude...)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rel := range sortedKeys(s.entries) {
		x := s.entries[rel]
		y, ok := now.entries[rel]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%q deleted", rel))
		case x.Mode != y.Mode || x.UID != y.UID || x.GID != y.GID || x.Size != y.Size ||
			x.MTime != y.MTime || x.Hash != y.Hash || x.Link != y.Link || x.Ino != y.Ino ||
			fmt.Sprint(x.Xattrs) != fmt.Sprint(y.Xattrs):
			out = append(out, fmt.Sprintf("%q changed: %+v -> %+v", rel, x, y))
		}
	}
	for _, rel := range sortedKeys(now.entries) {
		if _, ok := s.entries[rel]; !ok {
			out = append(out, fmt.Sprintf("%q created", rel))
		}
	}
	return out, nil
}
