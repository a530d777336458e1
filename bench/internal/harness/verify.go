package harness

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"
)

// Kind is the type of a tree entry.
type Kind byte

// Entry kinds.
const (
	KindDir     Kind = 'd'
	KindFile    Kind = 'f'
	KindSymlink Kind = 'l'
	KindOther   Kind = 'o' // FIFO, socket, device
)

// Entry is what the verifier records about one path.
type Entry struct {
	Kind   Kind
	Perm   fs.FileMode // permission bits plus setuid/setgid/sticky
	Size   int64       // regular files
	Sum    [32]byte    // SHA-256 of a regular file's content
	Target string      // symlink target
	MTime  int64       // Unix nanoseconds
	ino    uint64
	nlink  uint64
}

// Tree maps slash-separated paths relative to the scanned root ("." is the
// root itself) to entries. It holds one small record per path (the SHA-256,
// not the content), so it grows with the number of files, not their size.
type Tree map[string]Entry

// ScanTree records every entry below root, hashing regular files with
// workers goroutines. Symlinks are recorded, never followed.
func ScanTree(ctx context.Context, root string, workers int) (Tree, error) {
	workers = max(workers, 1)
	t := Tree{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	files := make(chan string)
	for range workers {
		g.Go(func() error {
			buf := make([]byte, 1<<20)
			for rel := range files {
				sum, n, err := hashFile(filepath.Join(root, filepath.FromSlash(rel)), buf)
				if err != nil {
					return err
				}
				mu.Lock()
				e := t[rel]
				e.Sum = sum
				if n != e.Size {
					mu.Unlock()
					return fmt.Errorf("scan %s: %s changed size while it was read (%d, then %d bytes)", root, rel, e.Size, n)
				}
				t[rel] = e
				mu.Unlock()
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(files)
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := gctx.Err(); err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			e := Entry{Perm: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
				MTime: fi.ModTime().UnixNano()}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				e.ino, e.nlink = st.Ino, uint64(st.Nlink)
			}
			switch {
			case fi.IsDir():
				e.Kind = KindDir
			case fi.Mode().IsRegular():
				e.Kind, e.Size = KindFile, fi.Size()
			case fi.Mode()&fs.ModeSymlink != 0:
				e.Kind = KindSymlink
				if e.Target, err = os.Readlink(p); err != nil {
					return err
				}
			default:
				e.Kind = KindOther
			}
			mu.Lock()
			t[rel] = e
			mu.Unlock()
			if e.Kind == KindFile {
				select {
				case files <- rel:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	return t, nil
}

func hashFile(p string, buf []byte) (sum [32]byte, n int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err = io.CopyBuffer(h, f, buf)
	if err != nil {
		return sum, n, fmt.Errorf("read %s: %w", p, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, n, nil
}

// Files returns the number of regular files and their total size.
func (t Tree) Files() (n, bytes int64) {
	for _, e := range t {
		if e.Kind == KindFile {
			n++
			bytes += e.Size
		}
	}
	return n, bytes
}

// linkGroups maps every path that shares its inode with another path of
// the tree to the smallest such path (its group's name).
func (t Tree) linkGroups() map[string]string {
	byIno := map[uint64][]string{}
	for p, e := range t {
		if e.Kind == KindFile && e.nlink > 1 {
			byIno[e.ino] = append(byIno[e.ino], p)
		}
	}
	groups := map[string]string{}
	for _, ps := range byIno {
		if len(ps) < 2 {
			continue
		}
		sort.Strings(ps)
		for _, p := range ps {
			groups[p] = ps[0]
		}
	}
	return groups
}

// Diff counts the differences between a source tree and its restore.
type Diff struct {
	// Data mismatches: the restore lost or changed content.
	Missing, Extra, Kind, Size, Content, Symlink int
	// Metadata mismatches: permission bits, modification times (files and
	// directories), hard-link structure. The restore root's own mode and
	// mtime are not compared (the harness may create that directory).
	Mode, MTime, HardLink int
	// Examples describes the first mismatches, data mismatches first.
	Examples []string
}

const maxExamples = 12

// DataMismatches is the number of entries whose presence, type, size,
// content or symlink target differ.
func (d Diff) DataMismatches() int {
	return d.Missing + d.Extra + d.Kind + d.Size + d.Content + d.Symlink
}

// MetaMismatches is the number of mode, mtime and hard-link differences.
func (d Diff) MetaMismatches() int { return d.Mode + d.MTime + d.HardLink }

// OK reports a faithful restore.
func (d Diff) OK() bool { return d.DataMismatches() == 0 && d.MetaMismatches() == 0 }

// Summary is a one-line description.
func (d Diff) Summary() string {
	if d.OK() {
		return "OK"
	}
	var parts []string
	for _, c := range []struct {
		name string
		n    int
	}{{"missing", d.Missing}, {"extra", d.Extra}, {"type", d.Kind}, {"size", d.Size},
		{"content", d.Content}, {"symlink", d.Symlink}, {"mode", d.Mode}, {"mtime", d.MTime}, {"hardlink", d.HardLink}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.name))
		}
	}
	if d.DataMismatches() > 0 {
		return "DATA MISMATCH: " + strings.Join(parts, ", ")
	}
	return "metadata mismatch: " + strings.Join(parts, ", ")
}

// Compare lists how restored differs from src.
func Compare(src, restored Tree) Diff {
	var d Diff
	var dataEx, metaEx []string
	data := func(counter *int, format string, args ...any) {
		*counter++
		if len(dataEx) < maxExamples {
			dataEx = append(dataEx, fmt.Sprintf(format, args...))
		}
	}
	meta := func(counter *int, format string, args ...any) {
		*counter++
		if len(metaEx) < maxExamples {
			metaEx = append(metaEx, fmt.Sprintf(format, args...))
		}
	}
	paths := make([]string, 0, len(src))
	for p := range src {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	srcGroups, dstGroups := src.linkGroups(), restored.linkGroups()
	for _, p := range paths {
		s := src[p]
		r, ok := restored[p]
		switch {
		case !ok:
			data(&d.Missing, "%s: missing", p)
			continue
		case s.Kind != r.Kind:
			data(&d.Kind, "%s: type %c, restored %c", p, s.Kind, r.Kind)
			continue
		}
		switch s.Kind {
		case KindFile:
			if s.Size != r.Size {
				data(&d.Size, "%s: size %d, restored %d", p, s.Size, r.Size)
			} else if s.Sum != r.Sum {
				data(&d.Content, "%s: content differs (SHA-256)", p)
			}
			if sg, dg := groupOf(srcGroups, p), groupOf(dstGroups, p); sg != dg {
				meta(&d.HardLink, "%s: hard-link group %q, restored %q", p, sg, dg)
			}
		case KindSymlink:
			if s.Target != r.Target {
				data(&d.Symlink, "%s: symlink to %q, restored to %q", p, s.Target, r.Target)
			}
		}
		if p == "." || s.Kind == KindSymlink {
			continue
		}
		if s.Perm != r.Perm {
			meta(&d.Mode, "%s: mode %v, restored %v", p, s.Perm, r.Perm)
		}
		if (s.Kind == KindFile || s.Kind == KindDir) && s.MTime != r.MTime {
			meta(&d.MTime, "%s: mtime %d, restored %d", p, s.MTime, r.MTime)
		}
	}
	var extra []string
	for p := range restored {
		if _, ok := src[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		data(&d.Extra, "%s: not in the source", p)
	}
	d.Examples = append(dataEx, metaEx...)
	if len(d.Examples) > maxExamples {
		d.Examples = d.Examples[:maxExamples]
	}
	return d
}

func groupOf(groups map[string]string, p string) string {
	if g, ok := groups[p]; ok {
		return g
	}
	return p
}
