// Package index holds index files (which blob lives where) and the compact
// in-memory index built from them.
//
//	indexFile = version(1)=1 || packCount(uvarint) || pack{packCount} || supersededCount(uvarint) || indexID(32){supersededCount}
//	pack      = packID(32) || packSize(uvarint) || blobCount(uvarint) || pack.Entry encoding{blobCount}
//
// The encoded file is sealed with the data key (aad "coffer index v1").
package index

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"coffer/internal/repository/compress"
	"coffer/internal/repository/crypto"
	"coffer/internal/repository/offheap"
	"coffer/internal/repository/pack"
)

const (
	// Version is the index file version this code writes.
	Version = 1
	// MaxFileSize caps a sealed index file a reader accepts.
	MaxFileSize = 64 << 20
	// AAD binds sealed index files to their purpose.
	AAD = "coffer index v1"
)

// ErrCorrupt marks an index file that fails to parse.
var ErrCorrupt = errors.New("index: corrupt")

// PackBlobs lists the blobs of one pack.
type PackBlobs struct {
	PackID [32]byte
	Size   int64
	Blobs  []pack.Entry
}

// File is the content of one index file.
type File struct {
	Packs []PackBlobs
	// Supersedes names index files whose content this file fully contains
	// (written by prune); readers may ignore those files.
	Supersedes [][32]byte
}

// Encode returns the plaintext encoding of f.
func Encode(f *File) []byte {
	n := 16
	for _, p := range f.Packs {
		n += 48 + len(p.Blobs)*pack.EntrySize
	}
	b := make([]byte, 0, n+len(f.Supersedes)*32)
	b = append(b, Version)
	b = binary.AppendUvarint(b, uint64(len(f.Packs)))
	for _, p := range f.Packs {
		b = append(b, p.PackID[:]...)
		b = binary.AppendUvarint(b, uint64(p.Size))
		b = binary.AppendUvarint(b, uint64(len(p.Blobs)))
		for _, e := range p.Blobs {
			b = append(b, e.Type, byte(e.Compression))
			b = append(b, e.ID[:]...)
			b = binary.LittleEndian.AppendUint32(b, e.Offset)
			b = binary.LittleEndian.AppendUint32(b, e.Length)
			b = binary.LittleEndian.AppendUint32(b, e.RawLength)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(f.Supersedes)))
	for _, s := range f.Supersedes {
		b = append(b, s[:]...)
	}
	return b
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint(what string, limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
		return 0
	}
	if v > limit {
		r.err = fmt.Errorf("%w: %s %d exceeds %d", ErrCorrupt, what, v, limit)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%w: truncated %s", ErrCorrupt, what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// Decode parses a plaintext index file. Counts are checked against the
// remaining input before anything is allocated.
func Decode(b []byte) (*File, error) {
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrCorrupt, len(b), MaxFileSize)
	}
	if len(b) < 1 || b[0] != Version {
		return nil, fmt.Errorf("%w: unknown version", ErrCorrupt)
	}
	r := &reader{b: b[1:]}
	np := r.uvarint("pack count", uint64(len(r.b)/34))
	f := &File{}
	if r.err == nil {
		f.Packs = make([]PackBlobs, 0, np)
	}
	for i := uint64(0); i < np && r.err == nil; i++ {
		var p PackBlobs
		copy(p.PackID[:], r.bytes(32, "pack id"))
		p.Size = int64(r.uvarint("pack size", pack.MaxPackSize))
		nb := r.uvarint("blob count", uint64(len(r.b)/pack.EntrySize))
		if r.err != nil {
			break
		}
		p.Blobs = make([]pack.Entry, nb)
		var end int64
		for j := range p.Blobs {
			e := &p.Blobs[j]
			raw := r.bytes(pack.EntrySize, "entry")
			if raw == nil {
				break
			}
			e.Type, e.Compression = raw[0], compress.ID(raw[1])
			copy(e.ID[:], raw[2:34])
			e.Offset = binary.LittleEndian.Uint32(raw[34:])
			e.Length = binary.LittleEndian.Uint32(raw[38:])
			e.RawLength = binary.LittleEndian.Uint32(raw[42:])
			if int64(e.Offset) < end || int64(e.Offset)+int64(e.Length) > p.Size || e.Length < crypto.Overhead || e.RawLength > pack.MaxBlobSize {
				r.err = fmt.Errorf("%w: pack %x entry %d out of bounds", ErrCorrupt, p.PackID, j)
				break
			}
			end = int64(e.Offset) + int64(e.Length)
		}
		f.Packs = append(f.Packs, p)
	}
	ns := r.uvarint("superseded count", uint64(len(r.b)/32))
	for i := uint64(0); i < ns && r.err == nil; i++ {
		var s [32]byte
		copy(s[:], r.bytes(32, "superseded id"))
		f.Supersedes = append(f.Supersedes, s)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return f, nil
}

// Location is where a blob lives (compact value record).
type Location struct {
	Pack        uint32 // index into the pack table
	Offset      uint32
	Length      uint32
	RawLength   uint32
	Compression compress.ID
}

// Key identifies a blob by type and ID.
type Key struct {
	Type uint8
	ID   [32]byte
}

// record is one index entry in the sorted array: 52 bytes, no pointers.
type record struct {
	id        [32]byte
	pack      uint32
	offset    uint32
	length    uint32
	rawLength uint32
	typ       uint8
	comp      compress.ID
}

func (r *record) key() Key { return Key{Type: r.typ, ID: r.id} }

func (r *record) loc() Location {
	return Location{Pack: r.pack, Offset: r.offset, Length: r.length, RawLength: r.rawLength, Compression: r.comp}
}

func cmpKey(a *record, k Key) int {
	if c := bytes.Compare(a.id[:], k.ID[:]); c != 0 {
		return c
	}
	return int(a.typ) - int(k.Type)
}

// Index is the in-memory index: blob → location, with a pack table. The
// bulk of the entries sits in one sorted array of fixed-size records
// (52 bytes each, no per-entry pointers, binary search); entries added since
// the last merge sit in a small hash table that is merged into the array
// when it reaches 1/8 of it. Safe for concurrent use.
type Index struct {
	mu       sync.RWMutex
	packIDs  [][32]byte
	packSize []int64
	packNum  map[[32]byte]uint32
	sorted   []record
	recent   map[Key]Location
	dups     int
	// mem holds the mapping sorted lies in (see merge).
	mem *recordsMem
}

// recordsMem is the memory of an index's sorted records: outside the Go
// heap (package offheap), freed when a merge replaces it and when the
// index is collected. On the heap, every merge left the old array as
// garbage (the arrays of a backup's session index added up to nine times
// its final size), which the collector paced the heap on and left
// resident as free heap: the index was what grew a backup's peak from
// scale 1 to scale 4.
type recordsMem struct{ buf []byte }

// New returns an empty index.
func New() *Index {
	x := &Index{packNum: make(map[[32]byte]uint32), recent: make(map[Key]Location), mem: &recordsMem{}}
	runtime.AddCleanup(x, func(m *recordsMem) { offheap.Free(m.buf) }, x.mem)
	return x
}

// allocRecords returns an empty slice of n records outside the heap, with
// the buffer behind it.
func allocRecords(n int) ([]record, []byte) {
	if n == 0 {
		return nil, nil
	}
	buf := offheap.Alloc(n * int(unsafe.Sizeof(record{})))
	return unsafe.Slice((*record)(unsafe.Pointer(unsafe.SliceData(buf[:1]))), n)[:0], buf
}

func (x *Index) find(k Key) (Location, bool) {
	if l, ok := x.recent[k]; ok {
		return l, true
	}
	i, ok := slices.BinarySearchFunc(x.sorted, k, func(r record, k Key) int { return cmpKey(&r, k) })
	if !ok {
		return Location{}, false
	}
	return x.sorted[i].loc(), true
}

// AddPack records a pack and its blobs. A blob already known keeps its first
// location (duplicates are counted and left for prune).
func (x *Index) AddPack(p PackBlobs) {
	x.AddPackReplacing(p, func(Key, [32]byte, [32]byte) bool { return false })
}

// AddPackReplacing records a pack like AddPack, but a blob already known
// takes its location in p when replace(k, oldPack, p.PackID) says so (a
// damaged copy giving way to an intact one).
func (x *Index) AddPackReplacing(p PackBlobs, replace func(k Key, oldPack, newPack [32]byte) bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, ok := x.packNum[p.PackID]
	if !ok {
		n = uint32(len(x.packIDs))
		x.packIDs = append(x.packIDs, p.PackID)
		x.packSize = append(x.packSize, p.Size)
		x.packNum[p.PackID] = n
	}
	for _, e := range p.Blobs {
		k := Key{Type: e.Type, ID: e.ID}
		loc := Location{Pack: n, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength, Compression: e.Compression}
		old, dup := x.find(k)
		if !dup {
			x.recent[k] = loc
			continue
		}
		x.dups++
		if old.Pack == n || !replace(k, x.packIDs[old.Pack], p.PackID) {
			continue
		}
		if _, ok := x.recent[k]; ok {
			x.recent[k] = loc
			continue
		}
		i, _ := slices.BinarySearchFunc(x.sorted, k, func(r record, k Key) int { return cmpKey(&r, k) })
		r := &x.sorted[i]
		r.pack, r.offset, r.length, r.rawLength, r.comp = loc.Pack, loc.Offset, loc.Length, loc.RawLength, loc.Compression
	}
	if len(x.recent) >= max(4096, len(x.sorted)/8) {
		x.merge()
	}
}

// merge moves the recent entries into the sorted array (exactly sized).
func (x *Index) merge() {
	add := make([]record, 0, len(x.recent))
	for k, l := range x.recent {
		add = append(add, record{id: k.ID, typ: k.Type, pack: l.Pack, offset: l.Offset, length: l.Length, rawLength: l.RawLength, comp: l.Compression})
	}
	slices.SortFunc(add, func(a, b record) int { return cmpKey(&a, b.key()) })
	out, buf := allocRecords(len(x.sorted) + len(add))
	i, j := 0, 0
	for i < len(x.sorted) && j < len(add) {
		if cmpKey(&x.sorted[i], add[j].key()) < 0 {
			out = append(out, x.sorted[i])
			i++
		} else {
			out = append(out, add[j])
			j++
		}
	}
	out = append(out, x.sorted[i:]...)
	out = append(out, add[j:]...)
	// Readers use sorted under mu only: the old array is free now.
	x.sorted = out
	offheap.Free(x.mem.buf)
	x.mem.buf = buf
	clear(x.recent)
	x.recent = make(map[Key]Location)
}

// Lookup returns a blob's location and pack ID.
func (x *Index) Lookup(k Key) (Location, [32]byte, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	l, ok := x.find(k)
	if !ok {
		return l, [32]byte{}, false
	}
	return l, x.packIDs[l.Pack], true
}

// Has reports whether the blob is indexed.
func (x *Index) Has(k Key) bool {
	x.mu.RLock()
	_, ok := x.find(k)
	x.mu.RUnlock()
	return ok
}

// Len returns the number of distinct blobs.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.sorted) + len(x.recent)
}

// Packs calls fn for every known pack with its size.
func (x *Index) Packs(fn func(id [32]byte, size int64)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for i, id := range x.packIDs {
		fn(id, x.packSize[i])
	}
}

// RemovePacks drops every blob stored in one of the given packs (used when
// storage no longer holds them, so that deduplication re-uploads the data).
func (x *Index) RemovePacks(gone map[[32]byte]bool) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	removed := 0
	for k, l := range x.recent {
		if gone[x.packIDs[l.Pack]] {
			delete(x.recent, k)
			removed++
		}
	}
	kept := x.sorted[:0]
	for _, r := range x.sorted {
		if gone[x.packIDs[r.pack]] {
			removed++
			continue
		}
		kept = append(kept, r)
	}
	x.sorted = kept
	return removed
}

// ForPacks calls fn with the packs and their blobs (each pack's blobs in
// offset order), in batches of whole packs in the order they were added,
// each batch holding at most maxBlobs blobs unless a single pack has more.
// The batches are built one at a time, so that listing an index as files
// costs one batch of memory beside the compact records. x must not change
// meanwhile.
func (x *Index) ForPacks(maxBlobs int, fn func([]PackBlobs) error) error {
	x.mu.RLock()
	counts := make([]int, len(x.packIDs))
	for i := range x.sorted {
		counts[x.sorted[i].pack]++
	}
	for _, l := range x.recent {
		counts[l.Pack]++
	}
	x.mu.RUnlock()
	for lo := 0; lo < len(counts); {
		hi, n := lo, 0
		for hi < len(counts) && (hi == lo || n+counts[hi] <= maxBlobs) {
			n += counts[hi]
			hi++
		}
		batch := x.packBlobs(lo, hi, counts)
		if err := fn(batch); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// packBlobs returns the packs numbered lo to hi-1 with their blobs.
func (x *Index) packBlobs(lo, hi int, counts []int) []PackBlobs {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]PackBlobs, hi-lo)
	for i := range out {
		out[i] = PackBlobs{PackID: x.packIDs[lo+i], Size: x.packSize[lo+i], Blobs: make([]pack.Entry, 0, counts[lo+i])}
	}
	add := func(id [32]byte, typ uint8, l Location) {
		if int(l.Pack) < lo || int(l.Pack) >= hi {
			return
		}
		p := &out[int(l.Pack)-lo]
		p.Blobs = append(p.Blobs, pack.Entry{Type: typ, Compression: l.Compression, ID: id,
			Offset: l.Offset, Length: l.Length, RawLength: l.RawLength})
	}
	for i := range x.sorted {
		r := &x.sorted[i]
		add(r.id, r.typ, r.loc())
	}
	for k, l := range x.recent {
		add(k.ID, k.Type, l)
	}
	for i := range out {
		slices.SortFunc(out[i].Blobs, func(a, b pack.Entry) int { return cmp.Compare(a.Offset, b.Offset) })
	}
	return out
}
