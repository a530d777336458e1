package fstree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"coffer/internal/repository"
)

// Large files are written with direct I/O (O_DIRECT): their data goes from
// the writer's buffer to the disk without being copied into the page cache.
// On the project's virtual machines putting new pages into the page cache
// was most of a restore's CPU (15 s of system time against 2.3 s of user
// time for 2 GiB; `dd` of 1 GiB: 0.5–3.2 s of system time buffered, 0.15–0.2
// s with O_DIRECT). Direct I/O needs the file offset, the length and the
// memory address aligned to the device's block size, and blob boundaries
// are content-defined: each blob's plaintext is placed in an aligned buffer
// at the phase of its file offset, its aligned middle is written through a
// second, O_DIRECT descriptor and the unaligned head and tail (under 4 KiB
// each) through the ordinary one. The two never write the same block, so
// the page cache stays coherent (a direct write flushes and drops only the
// cached pages of its own range). Files are preallocated (fallocate) to
// their size first, so that the direct writes neither extend the file nor
// allocate blocks, and several writers can fill one file at once.
//
// A file system without direct I/O or preallocation (tmpfs, some FUSE
// file systems) makes the restore fall back to buffered writes, file by
// file or, after EINVAL from a direct write, for the rest of the restore.

// directMin is the smallest file written with direct I/O: below it the
// edges and the second open cost more than the copy into the page cache
// saves. A variable so that tests can use small files.
var directMin int64 = 1 << 20

// testHookDirect, set only by tests, sees the length of every direct write.
var testHookDirect func(n int64)

// directAlign is the alignment of direct writes: 4 KiB satisfies every
// logical block size Linux file systems use for O_DIRECT (512 or 4096).
const directAlign = 4096

// openDirect preallocates the new file f (name in dir, created by the walk)
// to size and opens it a second time with O_DIRECT. It returns nil when the
// file is to be written through f alone.
func (r *restorer) openDirect(dir *stageDir, name string, f *os.File, size int64) *os.File {
	if r.noDirect.Load() {
		return nil
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			r.noDirect.Store(true)
		}
		return nil
	}
	fd, err := unix.Openat(int(dir.f.Fd()), name, unix.O_WRONLY|unix.O_DIRECT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			r.noDirect.Store(true)
		}
		return nil
	}
	return os.NewFile(uintptr(fd), name)
}

// alignedBuf returns a buffer of capacity at least n whose first byte is
// aligned to directAlign.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := directAlign - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%directAlign)
	if skip == directAlign {
		skip = 0
	}
	return b[skip : skip : skip+n]
}

func isAligned(b []byte) bool {
	return cap(b) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(b[:1])))%directAlign == 0
}

// blobHead is where a blob's plaintext starts in a writer's buffer, less
// its phase: one aligned block in, so that the loader can read the sealed
// blob (its nonce first) into the same buffer and decrypt it in place.
const blobHead = directAlign

// blobGrain rounds up the size of a writer's buffer.
const blobGrain = 64 << 10

// atLoader is a Loader that reads a blob into the caller's buffer and
// decrypts it there (repository.Repository.LoadBlobAt): the blob is then
// never held twice, sealed and plain.
type atLoader interface {
	LoadBlobAt(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error)
}

// blobBuf returns the writer's buffer *bufp up to blobHead+phase, replaced
// by an aligned one when it is not aligned or cannot hold a blob of size
// bytes there with the loader's room around it. The new buffer is only as
// large as that blob needs (rounded up to blobGrain): each of the
// restore's writers keeps its buffer, and doubling made them grow to twice
// the largest chunk (8 MiB each for 4 MiB chunks).
func blobBuf(bufp *[]byte, phase int, size uint32) []byte {
	at := blobHead + phase
	need := at + int(size) + repository.LoadBlobTail
	if cap(*bufp) < need || !isAligned(*bufp) {
		*bufp = alignedBuf((need + blobGrain - 1) / blobGrain * blobGrain)
	}
	return (*bufp)[:at]
}

// loadData loads the data blob id of size bytes, verified, into the
// writer's buffer at blobHead+phase. inPlace reports whether it is there
// (a loader or buffer that could not take it returns it elsewhere).
func (r *restorer) loadData(ctx context.Context, id repository.ID, bufp *[]byte, phase int, size uint32) (b []byte, inPlace bool, err error) {
	buf := blobBuf(bufp, phase, size)
	if al, ok := r.loader.(atLoader); ok {
		b, err = al.LoadBlobAt(ctx, repository.DataBlob, id, buf)
	} else {
		b, err = r.loader.LoadBlob(ctx, repository.DataBlob, id, buf[len(buf):])
	}
	if err != nil {
		return nil, false, err
	}
	inPlace = len(b) > 0 && unsafe.SliceData(b) == unsafe.SliceData((*bufp)[len(buf):len(buf)+1])
	return b, inPlace, nil
}

// writeRangeDirect is writeRange for a dense file with a direct descriptor
// (content offset = file offset).
func (r *restorer) writeRangeDirect(ctx context.Context, j fileJob, bufp *[]byte) error {
	fw := j.fw
	off := j.off
	var written int64
	defer func() { fw.written.Add(written) }()
	for _, id := range fw.n.Content[j.first:j.last] {
		size, ok := r.loader.BlobSize(repository.DataBlob, id)
		if !ok {
			return fmt.Errorf("/%s: %w: data %v", fw.rel, repository.ErrBlobNotFound, id)
		}
		b, inPlace, err := r.loadData(ctx, id, bufp, int(off%directAlign), size)
		if err != nil {
			return fmt.Errorf("/%s: %w", fw.rel, err)
		}
		if off+int64(len(b)) > fw.n.Size {
			return fmt.Errorf("/%s: %w: content longer than its extents", fw.rel, ErrHostileEntry)
		}
		if err := r.writeDirect(fw, b, off, inPlace); err != nil {
			return fmt.Errorf("/%s: write: %w", fw.rel, err)
		}
		off += int64(len(b))
		written += int64(len(b))
		r.bytesDone.Add(int64(len(b)))
	}
	return nil
}

// writeDirect writes b at file offset off: the aligned middle through the
// direct descriptor when b lies in the aligned buffer at off's phase
// (inPlace), everything else through the ordinary one.
func (r *restorer) writeDirect(fw *fileWrite, b []byte, off int64, inPlace bool) error {
	end := off + int64(len(b))
	a0 := (off + directAlign - 1) / directAlign * directAlign
	a1 := end / directAlign * directAlign
	if !inPlace || a1 <= a0 || r.noDirect.Load() {
		_, err := fw.f.WriteAt(b, off)
		return err
	}
	if a0 > off {
		if _, err := fw.f.WriteAt(b[:a0-off], off); err != nil {
			return err
		}
	}
	if _, err := fw.direct.WriteAt(b[a0-off:a1-off], a0); err != nil {
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		// The device wants a larger alignment: buffered from now on.
		r.noDirect.Store(true)
		if _, err := fw.f.WriteAt(b[a0-off:a1-off], a0); err != nil {
			return err
		}
	} else {
		r.directBytes.Add(a1 - a0)
		if testHookDirect != nil {
			testHookDirect(a1 - a0)
		}
	}
	if end > a1 {
		if _, err := fw.f.WriteAt(b[a1-off:], a1); err != nil {
			return err
		}
	}
	return nil
}
