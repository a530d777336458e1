package fstree

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// rangeBlobs is how many blobs one writer job covers: a file with more is
// split into ranges that several writers fill at once with positional
// writes, so one large file does not restore on one core. A variable so
// that tests can make every blob its own range.
var rangeBlobs = 8

// fileWrite is one file being filled by one or more range jobs; the job
// that finishes last completes the file.
type fileWrite struct {
	f       *os.File // a new staging file the walk created (0600, O_EXCL, no symlinks)
	direct  *os.File // nil, or f opened again with O_DIRECT (see restore_direct.go)
	rel     string
	n       *snapshot.Node
	exts    []snapshot.Extent
	left    atomic.Int64 // ranges not yet done
	written atomic.Int64
	mu      sync.Mutex
	err     error // first error of any range
}

// fileJob is blobs [first, last) of a file's content, which start at
// content offset off (bytes of the extents before them).
type fileJob struct {
	fw          *fileWrite
	first, last int
	off         int64
}

// splitFile returns the range jobs of a file.
func (r *restorer) splitFile(fw *fileWrite) ([]fileJob, error) {
	content := fw.n.Content
	if len(content) <= rangeBlobs {
		return []fileJob{{fw: fw, first: 0, last: len(content)}}, nil
	}
	var jobs []fileJob
	var off int64
	for i := 0; i < len(content); i += rangeBlobs {
		j := fileJob{fw: fw, first: i, last: min(i+rangeBlobs, len(content)), off: off}
		for _, id := range content[j.first:j.last] {
			size, ok := r.loader.BlobSize(repository.DataBlob, id)
			if !ok {
				return nil, fmt.Errorf("/%s: %w: data %v", fw.rel, repository.ErrBlobNotFound, id)
			}
			off += int64(size)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// writeRange loads the blobs of one range, verified, and writes them at
// their places in the file's extents. *bufp is the writer's scratch for
// blob contents, kept (grown) for its next range.
func (r *restorer) writeRange(ctx context.Context, j fileJob, bufp *[]byte) error {
	fw := j.fw
	if fw.direct != nil {
		return r.writeRangeDirect(ctx, j, bufp)
	}
	exts := fw.exts
	ei, eoff := 0, j.off // current extent and offset inside it
	var written int64
	defer func() { fw.written.Add(written) }()
	for _, id := range fw.n.Content[j.first:j.last] {
		// The buffer is sized (and aligned, for direct writes of other
		// files) up front, so that the loader never grows it.
		size, ok := r.loader.BlobSize(repository.DataBlob, id)
		if !ok {
			return fmt.Errorf("/%s: %w: data %v", fw.rel, repository.ErrBlobNotFound, id)
		}
		buf, _, err := r.loadData(ctx, id, bufp, 0, size)
		if err != nil {
			return fmt.Errorf("/%s: %w", fw.rel, err)
		}
		for b := buf; len(b) > 0; {
			for ei < len(exts) && eoff >= exts[ei].Length {
				ei, eoff = ei+1, eoff-exts[ei].Length
			}
			if ei >= len(exts) {
				return fmt.Errorf("/%s: %w: content longer than its extents", fw.rel, ErrHostileEntry)
			}
			k := min(int64(len(b)), exts[ei].Length-eoff)
			if _, err := fw.f.WriteAt(b[:k], exts[ei].Offset+eoff); err != nil {
				return fmt.Errorf("/%s: write: %w", fw.rel, err)
			}
			eoff += k
			written += k
			b = b[k:]
			r.bytesDone.Add(k)
		}
	}
	return nil
}

// rangeDone records that n ranges of fw ended (with err, if any). The last
// one completes the file, or only closes it when a range failed. It returns
// err or the completion's error.
func (r *restorer) rangeDone(fw *fileWrite, n int, err error) error {
	fw.mu.Lock()
	if err != nil && fw.err == nil {
		fw.err = err
	}
	failed := fw.err != nil
	fw.mu.Unlock()
	if fw.left.Add(-int64(n)) != 0 {
		return err
	}
	if failed {
		if fw.direct != nil {
			_ = fw.direct.Close()
		}
		_ = fw.f.Close()
		return err
	}
	return r.finishFile(fw)
}

// finishFile checks that the content filled the extents, sets the size,
// xattrs and times on the open file and closes it.
func (r *restorer) finishFile(fw *fileWrite) error {
	f, n, rel := fw.f, fw.n, fw.rel
	defer f.Close()
	if fw.direct != nil {
		// Direct writes are complete when they return; the descriptor
		// carries nothing else.
		if err := fw.direct.Close(); err != nil {
			return fmt.Errorf("/%s: close: %w", rel, err)
		}
	}
	var want, end int64
	for _, e := range fw.exts {
		want += e.Length
		if e.Length > 0 {
			end = max(end, e.Offset+e.Length)
		}
	}
	if written := fw.written.Load(); written != want {
		return fmt.Errorf("/%s: %w: content holds %d bytes, extents %d", rel, ErrHostileEntry, written, want)
	}
	// The new file is as long as its last written byte; only a hole at the
	// end (or an extent past the size) needs a truncate.
	if end != n.Size {
		if err := f.Truncate(n.Size); err != nil {
			return fmt.Errorf("/%s: truncate: %w", rel, err)
		}
	}
	// Extended attributes and times go on through the open descriptor once
	// the content is complete; owner and mode wait for finish (K-9).
	if err := r.setXattrs(int(f.Fd()), rel, n); err != nil {
		return fmt.Errorf("/%s: %w", rel, err)
	}
	if err := setFdTimes(int(f.Fd()), n); err != nil {
		return fmt.Errorf("/%s: set times: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("/%s: close: %w", rel, err)
	}
	if hole := n.Size - want; hole > 0 {
		r.bytesDone.Add(hole)
	}
	r.files.Add(1)
	r.bytes.Add(n.Size)
	return nil
}
