package fstree

import (
	"context"
	"fmt"
	"os"
	"path"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// write creates directories, symlinks and specials in staging and writes the
// file contents with a pool of workers.
func (r *restorer) write(ctx context.Context, rootID repository.ID) error {
	g, gctx := errgroup.WithContext(ctx)
	// The walk creates every file itself, in order, like cp: creating files
	// from several writers made them spin on the parent directory's lock
	// (8 % of a restore's CPU in rwsem_spin_on_owner under perf). A fixed
	// set of writers then fills the open files, a large file in ranges
	// that several writers write at once; each writer reuses its blob
	// buffer and its grown stack (a goroutine per file spent 3 % of the CPU
	// copying stacks and 2 % allocating a buffer per file). After an error
	// a writer keeps draining the queue, closing the files.
	jobs := make(chan fileJob, r.opts.Workers)
	for range r.opts.Workers {
		g.Go(func() error {
			var buf []byte
			var err error
			for j := range jobs {
				jerr := err // after a failure ranges are skipped, not written
				if err == nil {
					jerr = r.writeRange(gctx, j, &buf)
				}
				if derr := r.rangeDone(j.fw, 1, jerr); err == nil {
					err = derr
				}
			}
			return err
		})
	}
	// dirs holds a handle on every staging directory the walk is inside,
	// innermost last, so that files are created with one openat relative
	// to their parent instead of a walk from the root per file (9 openat,
	// 9 close and 8 fcntl calls per file with os.Root: half the CPU of a
	// restore of many small files).
	var dirs []*stageDir
	defer func() {
		for _, d := range dirs {
			d.release()
		}
	}()
	push := func(rel string) error {
		d, err := openStageDir(r.root, rel)
		if err != nil {
			return err
		}
		dirs = append(dirs, d)
		return nil
	}
	if err := push(r.dataRel); err != nil {
		return fmt.Errorf("open staging directory: %w", err)
	}
	walkErr := r.sel.walk(gctx, rootID, func(ev event) error {
		srel := r.dataRel + "/" + ev.rel
		switch ev.kind {
		case evEnter:
			if err := r.root.Mkdir(srel, 0o700); err != nil {
				return fmt.Errorf("/%s: mkdir: %w", ev.rel, err)
			}
			r.dirs.Add(1)
			if err := push(srel); err != nil {
				return fmt.Errorf("/%s: %w", ev.rel, err)
			}
			return nil
		case evLeave:
			if top := dirs[len(dirs)-1]; len(dirs) > 1 && top.rel == srel {
				dirs = dirs[:len(dirs)-1]
				top.release()
			}
			return nil
		}
		n := ev.node
		switch n.Type {
		case snapshot.TypeFile:
			if n.Links > 1 {
				k := hlKey{n.Device, n.Inode}
				if p, ok := r.hlPrimary[k]; ok {
					r.links = append(r.links, [2]string{p, srel})
					return nil
				}
				r.hlPrimary[k] = srel
			}
			var f *os.File
			var err error
			top := dirs[len(dirs)-1]
			inTop := top.rel == path.Dir(srel)
			if inTop {
				f, err = createIn(top, path.Base(srel))
			} else {
				f, err = r.root.OpenFile(srel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
			}
			if err != nil {
				return fmt.Errorf("/%s: create: %w", ev.rel, err)
			}
			fw := &fileWrite{f: f, rel: ev.rel, n: n, exts: n.Extents}
			if fw.exts == nil {
				fw.exts = []snapshot.Extent{{Offset: 0, Length: n.Size}}
			}
			if dense := len(fw.exts) == 1 && fw.exts[0].Offset == 0 && fw.exts[0].Length == n.Size; dense && inTop && n.Size >= directMin {
				fw.direct = r.openDirect(top, path.Base(srel), f, n.Size)
			}
			ranges, err := r.splitFile(fw)
			if err != nil {
				_ = f.Close()
				return err
			}
			fw.left.Store(int64(len(ranges)))
			for i, j := range ranges {
				select {
				case jobs <- j:
				case <-gctx.Done():
					return r.rangeDone(fw, len(ranges)-i, gctx.Err())
				}
			}
		case snapshot.TypeSymlink:
			if err := r.root.Symlink(n.LinkTarget, srel); err != nil {
				return fmt.Errorf("/%s: symlink: %w", ev.rel, err)
			}
			r.symlinks.Add(1)
		default: // specials; the walk only yields them in faithful mode
			if err := r.mknod(srel, n); err != nil {
				return fmt.Errorf("/%s: mknod: %w", ev.rel, err)
			}
			r.specials.Add(1)
		}
		return nil
	})
	close(jobs)
	waitErr := g.Wait()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case waitErr != nil:
		return waitErr // walkErr is then the cancellation it caused
	}
	return walkErr
}

// stageDir is an open staging directory the walk is inside.
type stageDir struct {
	rel string
	f   *os.File
}

// openStageDir opens rel (inside the root, no symlinks followed).
func openStageDir(root *os.Root, rel string) (*stageDir, error) {
	f, err := root.OpenFile(rel, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	return &stageDir{rel: rel, f: f}, nil
}

func (d *stageDir) release() { _ = d.f.Close() }

// createIn creates the file name in dir: one path component, exclusive,
// never through a symlink.
func createIn(dir *stageDir, name string) (*os.File, error) {
	fd, err := unix.Openat(int(dir.f.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func (r *restorer) mknod(srel string, n *snapshot.Node) error {
	var typ uint32
	switch n.Type {
	case snapshot.TypeFIFO:
		typ = unix.S_IFIFO
	case snapshot.TypeSocket:
		typ = unix.S_IFSOCK
	case snapshot.TypeCharDev:
		typ = unix.S_IFCHR
	case snapshot.TypeBlkDev:
		typ = unix.S_IFBLK
	default:
		return fmt.Errorf("unexpected node type %s", n.Type)
	}
	dir, err := r.root.Open(path.Dir(srel))
	if err != nil {
		return err
	}
	defer dir.Close()
	return unix.Mknodat(int(dir.Fd()), path.Base(srel), typ|0o600, int(n.Rdev))
}
