// Package repository is the vault repository engine: content-defined
// chunking, keyed content IDs, per-blob compression, authenticated
// encryption, packs, indexes, tree blobs (package snapshot) and manifests on
// a blob.Storage. The byte format is specified in
// docs/design/repository-format.md.
package repository

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"coffer/internal/clock"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/chunker"
	"coffer/internal/repository/compress"
	"coffer/internal/repository/crypto"
	"coffer/internal/repository/index"
	"coffer/internal/repository/pack"
)

var (
	// ErrCorrupt means stored data failed authentication, decoding or its
	// content check.
	ErrCorrupt = errors.New("repository: corrupt data")
	// ErrBlobNotFound means the index knows no such blob.
	ErrBlobNotFound = errors.New("repository: blob not found")
	// ErrWrongKey means no key file opens with the given master key.
	ErrWrongKey = errors.New("repository: wrong master key")
	// ErrExists means Create found an existing repository.
	ErrExists = errors.New("repository: already exists")
	// ErrNotRepository means Open found no repository configuration.
	ErrNotRepository = errors.New("repository: no repository here")
	// ErrLocked means a conflicting lock (maintenance vs writers) is held.
	ErrLocked = errors.New("repository: locked")
	// ErrManifestNotFound means no manifest has the given ID.
	ErrManifestNotFound = errors.New("repository: manifest not found")
)

// Format version and algorithm identifiers. Persisted: never reuse.
const (
	FormatVersion   = 1
	CipherAES256GCM = "aes-256-gcm"
	IDBlake3Keyed   = "blake3-256-keyed"
	ChunkerFastCDC  = "fastcdc-gear64-keyed-v1"
)

// Object name prefixes in storage.
const (
	ConfigName     = "config"
	KeysPrefix     = "keys/"
	DataPrefix     = "data/"
	IndexPrefix    = "index/"
	ManifestPrefix = "manifests/"
	LocksPrefix    = "locks/"
)

// Options tune a repository. The zero value gives good defaults.
type Options struct {
	// PackSize is the target size of data packs (default 8 MiB, 1–512 MiB).
	PackSize int
	// Workers is the number of compress/encrypt/pack workers (default GOMAXPROCS).
	Workers int
	// Uploads is the number of concurrent pack uploads (default the
	// storage's Properties().Connections, at most max(Workers, 2)).
	Uploads int
	// Compression selects the zstd level (default compress.Fastest).
	Compression compress.Level
	// InFlight caps the bytes of chunks queued for workers (default 16 MiB,
	// at least the maximum chunk size).
	InFlight int
	// SkipPackVerify disables decrypting and hashing each pack after
	// encoding and before upload (on by default).
	SkipPackVerify bool
	// Chunker sets chunk sizes when creating a repository (default 512 KiB /
	// 1 MiB / 8 MiB). Ignored by Open, which uses the stored configuration.
	Chunker chunker.Params
	// Clock is the time source (default clock.Real).
	Clock clock.Clock
	// LeaseDuration is how long a lock is valid without refresh (default 5 min).
	LeaseDuration time.Duration
	// Logger receives diagnostics (default slog.Default()).
	Logger *slog.Logger
}

func (o *Options) fill(st blob.Storage) error {
	if o.PackSize == 0 {
		o.PackSize = 8 << 20
	}
	if o.PackSize < 1<<20 || o.PackSize > 512<<20 {
		return fmt.Errorf("repository: pack size %d out of range [1 MiB, 512 MiB]", o.PackSize)
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Workers < 1 || o.Workers > 1024 {
		return fmt.Errorf("repository: workers %d out of range", o.Workers)
	}
	if o.Uploads == 0 {
		// Each upload holds a pack in memory: use the storage's connections
		// but no more than needed to keep the workers busy.
		o.Uploads = max(min(st.Properties().Connections, max(o.Workers, 2)), 1)
	}
	if o.Uploads < 1 || o.Uploads > 1024 {
		return fmt.Errorf("repository: uploads %d out of range", o.Uploads)
	}
	if o.Compression < compress.Fastest || o.Compression > compress.Off {
		return fmt.Errorf("repository: unknown compression level %d", o.Compression)
	}
	if o.InFlight == 0 {
		o.InFlight = 16 << 20
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 5 * time.Minute
	}
	if o.LeaseDuration < time.Second {
		return fmt.Errorf("repository: lease duration %v too short", o.LeaseDuration)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Config is the repository configuration stored (sealed) in "config".
type Config struct {
	Version   int            `json:"version"`
	RepoID    string         `json:"repo_id"`
	Cipher    string         `json:"cipher"`
	IDHash    string         `json:"id_hash"`
	Chunker   string         `json:"chunker"`
	ChunkSize chunker.Params `json:"chunk_size"`
}

// Repository is an open vault repository. Safe for concurrent use.
type Repository struct {
	st     blob.Storage
	opts   Options
	cfg    Config
	repoID [16]byte
	aead   *crypto.AEAD
	hasher *crypto.IDHasher
	gear   *chunker.Table
	codec  *compress.Codec
	idx    atomic.Pointer[index.Index]

	bufMu  sync.Mutex
	closed bool
	// scratch holds decryption buffers of openBlob, sealedBufs the sealed
	// blobs LoadBlob reads.
	scratch, sealedBufs bufPool
}

type keyMaterial struct {
	repoID  [16]byte
	dataKey []byte
	idKey   []byte
	gearKey []byte
}

const (
	keyMagic    = "CFKEY\x00"
	configMagic = "CFCFG\x00"
	keyWrapCtx  = "coffer 2026 key file wrapping key v1"
	configAAD   = "coffer config v1"
	payloadSize = 16 + 3*crypto.KeySize
	maxKeyFile  = 4096
	maxConfig   = 64 << 10
)

func wrapKey(master []byte) (*crypto.AEAD, error) {
	if len(master) != crypto.KeySize {
		return nil, fmt.Errorf("repository: master key must be %d bytes, got %d", crypto.KeySize, len(master))
	}
	return crypto.NewAEAD(crypto.DeriveKey(keyWrapCtx, master))
}

func encodeKeyFile(w *crypto.AEAD, km keyMaterial) []byte {
	payload := make([]byte, 0, payloadSize)
	payload = append(payload, km.repoID[:]...)
	payload = append(payload, km.dataKey...)
	payload = append(payload, km.idKey...)
	payload = append(payload, km.gearKey...)
	hdr := []byte(keyMagic + "\x01")
	return w.Seal(append([]byte(nil), hdr...), payload, hdr)
}

// DecodeKeyFile opens a key file with the master key.
func decodeKeyFile(w *crypto.AEAD, b []byte) (keyMaterial, error) {
	var km keyMaterial
	if len(b) > maxKeyFile || len(b) < len(keyMagic)+1 || string(b[:len(keyMagic)]) != keyMagic {
		return km, fmt.Errorf("%w: not a key file", ErrCorrupt)
	}
	if b[len(keyMagic)] != 1 {
		return km, fmt.Errorf("%w: unknown key file version %d", ErrCorrupt, b[len(keyMagic)])
	}
	hdr := b[:len(keyMagic)+1]
	p, err := w.Open(nil, b[len(hdr):], hdr)
	if err != nil {
		return km, fmt.Errorf("%w: %w", ErrWrongKey, err)
	}
	if len(p) != payloadSize {
		return km, fmt.Errorf("%w: key payload of %d bytes", ErrCorrupt, len(p))
	}
	copy(km.repoID[:], p[:16])
	km.dataKey = p[16:48]
	km.idKey = p[48:80]
	km.gearKey = p[80:112]
	return km, nil
}

func randomName(n int) string {
	b := make([]byte, n)
	crypto.Random(b)
	return hex.EncodeToString(b)
}

// Create initialises a new repository on st, protected by the 32-byte master key.
func Create(ctx context.Context, st blob.Storage, masterKey []byte, opts Options) (*Repository, error) {
	if err := opts.fill(st); err != nil {
		return nil, err
	}
	w, err := wrapKey(masterKey)
	if err != nil {
		return nil, err
	}
	p := opts.Chunker
	if p == (chunker.Params{}) {
		p = chunker.DefaultParams
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if _, err := st.Stat(ctx, ConfigName); err == nil {
		return nil, ErrExists
	} else if !errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("repository: create: %w", err)
	}
	var km keyMaterial
	crypto.Random(km.repoID[:])
	km.dataKey, km.idKey, km.gearKey = crypto.RandomKey(), crypto.RandomKey(), crypto.RandomKey()
	cfg := Config{Version: FormatVersion, RepoID: hex.EncodeToString(km.repoID[:]), Cipher: CipherAES256GCM,
		IDHash: IDBlake3Keyed, Chunker: ChunkerFastCDC, ChunkSize: p}
	r, err := newRepository(st, opts, cfg, km)
	if err != nil {
		return nil, err
	}
	if err := st.Put(ctx, KeysPrefix+randomName(16), encodeKeyFile(w, km), blob.PutOptions{IfAbsent: true}); err != nil {
		r.Close()
		return nil, fmt.Errorf("repository: create: write key file: %w", err)
	}
	sealed, err := encodeConfig(cfg, km, r.aead)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("repository: create: %w", err)
	}
	if err := st.Put(ctx, ConfigName, sealed, blob.PutOptions{IfAbsent: true}); err != nil {
		r.Close()
		if errors.Is(err, blob.ErrAlreadyExists) {
			return nil, ErrExists
		}
		return nil, fmt.Errorf("repository: create: write config: %w", err)
	}
	return r, nil
}

func newRepository(st blob.Storage, opts Options, cfg Config, km keyMaterial) (*Repository, error) {
	a, err := crypto.NewAEAD(km.dataKey)
	if err != nil {
		return nil, err
	}
	h, err := crypto.NewIDHasher(km.idKey)
	if err != nil {
		return nil, err
	}
	g, err := chunker.NewTable(km.gearKey)
	if err != nil {
		return nil, err
	}
	codec, err := compress.New(opts.Compression, opts.Workers, pack.MaxBlobSize)
	if err != nil {
		return nil, err
	}
	r := &Repository{st: st, opts: opts, cfg: cfg, repoID: km.repoID, aead: a, hasher: h, gear: g, codec: codec}
	r.idx.Store(index.New())
	return r, nil
}

// Open opens an existing repository with the master key, loads its index
// and drops index entries whose pack is missing from storage or has the
// wrong size (so that new backups upload such data again).
func Open(ctx context.Context, st blob.Storage, masterKey []byte, opts Options) (*Repository, error) {
	if err := opts.fill(st); err != nil {
		return nil, err
	}
	w, err := wrapKey(masterKey)
	if err != nil {
		return nil, err
	}
	cfgBytes, err := st.Get(ctx, ConfigName, 0, -1)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("cannot open repository: %w", ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open repository: read config: %w", err)
	}
	var keyNames []string
	if err := st.List(ctx, KeysPrefix, func(i blob.Info) error {
		keyNames = append(keyNames, i.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("cannot open repository: list keys: %w", err)
	}
	var km keyMaterial
	found := false
	var lastErr error = ErrWrongKey
	for _, name := range keyNames {
		b, err := st.Get(ctx, name, 0, -1)
		if err != nil {
			lastErr = err
			continue
		}
		km, err = decodeKeyFile(w, b)
		if err == nil {
			found = true
			break
		}
		lastErr = err
	}
	if !found {
		if len(keyNames) == 0 {
			return nil, fmt.Errorf("cannot open repository: no key files: %w", ErrCorrupt)
		}
		return nil, fmt.Errorf("cannot open repository: no key file opens with this master key: %w", lastErr)
	}
	cfg, err := decodeConfig(cfgBytes, km)
	if err != nil {
		return nil, fmt.Errorf("cannot open repository: %w", err)
	}
	r, err := newRepository(st, opts, cfg, km)
	if err != nil {
		return nil, err
	}
	if err := r.loadIndex(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("cannot open repository: %w", err)
	}
	return r, nil
}

// Config returns the repository configuration.
func (r *Repository) Config() Config { return r.cfg }

// Storage returns the underlying storage (for maintenance).
func (r *Repository) Storage() blob.Storage { return r.st }

// Close releases resources. It does not close the storage.
func (r *Repository) Close() error {
	r.bufMu.Lock()
	defer r.bufMu.Unlock()
	if !r.closed {
		r.closed = true
		r.codec.Close()
	}
	return nil
}

// PackName is the storage name of a pack.
func PackName(id [32]byte) string {
	h := hex.EncodeToString(id[:])
	return DataPrefix + h[:2] + "/" + h
}

// ParsePackName returns the pack ID of a storage name under data/.
func ParsePackName(name string) ([32]byte, bool) {
	var id [32]byte
	rest, ok := strings.CutPrefix(name, DataPrefix)
	if !ok || len(rest) != 3+64 || rest[2] != '/' || rest[:2] != rest[3:5] {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(rest[3:])); err != nil {
		return id, false
	}
	return id, true
}

// IndexFile is a decoded index file with its name.
type IndexFile struct {
	Name string
	ID   [32]byte
	File *index.File
}

// ReadIndexFile reads, authenticates and decodes one index file.
func (r *Repository) ReadIndexFile(ctx context.Context, name string) (*index.File, error) {
	b, err := r.st.Get(ctx, name, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > index.MaxFileSize {
		return nil, fmt.Errorf("%s: %w: %d bytes", name, ErrCorrupt, len(b))
	}
	if want := strings.TrimPrefix(name, IndexPrefix); hex.EncodeToString(sum(b)) != want {
		return nil, fmt.Errorf("%s: %w: content does not match its name", name, ErrCorrupt)
	}
	p, err := r.aead.Open(nil, b, []byte(index.AAD))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrCorrupt, err)
	}
	f, err := index.Decode(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrCorrupt, err)
	}
	return f, nil
}

func sum(b []byte) []byte {
	h := crypto.Hash(b)
	return h[:]
}

// DamagedIndexFile is an object under index/ that could not be read.
type DamagedIndexFile struct {
	Name  string
	ID    [32]byte
	Named bool // Name is a well-formed index name (ID is set)
	Err   error
}

// ReadIndexFiles lists index/ and reads every object there on its own, so
// that one damaged file does not hide the others: a file that cannot be
// read is returned in damaged with its error. A listing error or a
// cancelled context is returned as err.
func (r *Repository) ReadIndexFiles(ctx context.Context) (readable []IndexFile, damaged []DamagedIndexFile, err error) {
	var names []string
	if err := r.st.List(ctx, IndexPrefix, func(i blob.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("list index: %w", err)
	}
	for _, n := range names {
		id, idErr := ParseID(strings.TrimPrefix(n, IndexPrefix))
		f, err := r.ReadIndexFile(ctx, n)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			damaged = append(damaged, DamagedIndexFile{Name: n, ID: id, Named: idErr == nil, Err: err})
			continue
		}
		readable = append(readable, IndexFile{Name: n, ID: id, File: f})
	}
	return readable, damaged, nil
}

// ActiveIndexFiles drops files superseded by another file in the list.
func ActiveIndexFiles(files []IndexFile) []IndexFile {
	sup := map[[32]byte]bool{}
	for _, f := range files {
		for _, s := range f.File.Supersedes {
			sup[s] = true
		}
	}
	out := files[:0:0]
	for _, f := range files {
		if !sup[f.ID] {
			out = append(out, f)
		}
	}
	return out
}

// Reload rereads the index from storage (after prune rewrote it).
func (r *Repository) Reload(ctx context.Context) error { return r.loadIndex(ctx) }

func (r *Repository) loadIndex(ctx context.Context) error {
	// Damaged index files are skipped (with a warning) so that the rest of
	// the repository stays readable; Check reports them and prune refuses
	// to run until they are dealt with.
	files, damaged, err := r.ReadIndexFiles(ctx)
	if err != nil {
		return err
	}
	for _, d := range damaged {
		switch {
		case !d.Named:
			r.opts.Logger.Warn("repository: ignoring unknown object", "name", d.Name)
		case errors.Is(d.Err, ErrCorrupt):
			r.opts.Logger.Warn("repository: skipping damaged index file", "name", d.Name, "err", d.Err)
		default:
			return d.Err
		}
	}
	idx := index.New()
	for _, f := range ActiveIndexFiles(files) {
		for _, p := range f.File.Packs {
			idx.AddPack(p)
		}
	}
	// Packs are listed after the index was read: every pack an index we read
	// names was durable before that index was written, so it is listed
	// unless it has been lost since.
	present := map[[32]byte]int64{}
	if err := r.st.List(ctx, DataPrefix, func(i blob.Info) error {
		if id, ok := ParsePackName(i.Name); ok {
			present[id] = i.Size
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list packs: %w", err)
	}
	gone := map[[32]byte]bool{}
	idx.Packs(func(id [32]byte, size int64) {
		if s, ok := present[id]; !ok || s != size {
			gone[id] = true
		}
	})
	if len(gone) > 0 {
		n := idx.RemovePacks(gone)
		r.opts.Logger.Warn("repository: packs missing or with wrong size; their blobs will be uploaded again", "packs", len(gone), "blobs", n)
	}
	r.idx.Store(idx)
	return nil
}

// Index returns the in-memory index (read-only use by maintenance).
func (r *Repository) Index() *index.Index { return r.idx.Load() }

// AEAD returns the data-key sealer (for maintenance).
func (r *Repository) AEAD() *crypto.AEAD { return r.aead }

// Codec returns the compression codec (for maintenance).
func (r *Repository) Codec() *compress.Codec { return r.codec }

// ComputeID returns the keyed content ID of data.
func (r *Repository) ComputeID(data []byte) ID { return ID(r.hasher.Sum(data)) }

// Clock returns the repository's time source.
func (r *Repository) Clock() clock.Clock { return r.opts.Clock }

// HasBlob reports whether the index knows the blob.
func (r *Repository) HasBlob(t BlobType, id ID) bool {
	return r.idx.Load().Has(index.Key{Type: uint8(t), ID: id})
}

// BlobSize returns the plaintext size of a blob from the index.
func (r *Repository) BlobSize(t BlobType, id ID) (uint32, bool) {
	l, _, ok := r.idx.Load().Lookup(index.Key{Type: uint8(t), ID: id})
	return l.RawLength, ok
}

// LoadBlob reads, authenticates, decompresses and verifies one blob, appending
// its plaintext to buf[:0]. It fails with ErrBlobNotFound for unknown blobs
// and with an error wrapping ErrCorrupt when any check fails.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	l, packID, ok := r.idx.Load().Lookup(index.Key{Type: uint8(t), ID: id})
	if !ok {
		return nil, fmt.Errorf("%w: %v %v", ErrBlobNotFound, t, id)
	}
	name := PackName(packID)
	sealed, err := blob.GetInto(ctx, r.st, name, int64(l.Offset), int64(l.Length), r.sealedBufs.get())
	defer r.sealedBufs.put(sealed)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) || errors.Is(err, blob.ErrInvalidRange) {
			return nil, fmt.Errorf("load %v %v from %s: %w: %w", t, id, name, ErrCorrupt, err)
		}
		return nil, fmt.Errorf("load %v %v from %s: %w", t, id, name, err)
	}
	return r.openBlob(buf, sealed, pack.Entry{Type: uint8(t), Compression: l.Compression, ID: id,
		Offset: l.Offset, Length: l.Length, RawLength: l.RawLength}, name)
}

// bufPool recycles byte buffers of at most 16 MiB.
type bufPool struct{ p sync.Pool }

func (b *bufPool) get() []byte {
	if v := b.p.Get(); v != nil {
		return *(v.(*[]byte))
	}
	return nil
}

func (b *bufPool) put(buf []byte) {
	if buf != nil && cap(buf) <= 16<<20 {
		b.p.Put(&buf)
	}
}

func (r *Repository) openBlob(buf, sealed []byte, e pack.Entry, packName string) ([]byte, error) {
	return r.openBlobWith(buf, sealed, e, packName, r.codec.AppendDecompressed)
}

func (r *Repository) openBlobWith(buf, sealed []byte, e pack.Entry, packName string, decompress pack.Decompressor) ([]byte, error) {
	if len(sealed) != int(e.Length) {
		return nil, fmt.Errorf("load %x from %s: %w: short read", e.ID, packName, ErrCorrupt)
	}
	out, scratch, err := pack.OpenBlob(buf[:0], sealed, e, r.aead, decompress, r.scratch.get())
	r.scratch.put(scratch)
	if err != nil {
		return nil, fmt.Errorf("load %x from %s: %w: %w", e.ID, packName, ErrCorrupt, err)
	}
	if got := r.hasher.Sum(out); got != e.ID {
		return nil, fmt.Errorf("load %x from %s: %w: content hash mismatch", e.ID, packName, ErrCorrupt)
	}
	return out, nil
}

// OpenPackBlob decrypts and verifies one blob out of a sealed byte range
// (used by maintenance when it reads whole packs).
func (r *Repository) OpenPackBlob(buf, sealed []byte, e pack.Entry, packName string) ([]byte, error) {
	return r.openBlob(buf, sealed, e, packName)
}

// decodeConfig authenticates and decodes the config object.
func decodeConfig(cfgBytes []byte, km keyMaterial) (Config, error) {
	var cfg Config
	hdrLen := len(configMagic) + 1 + 16
	if len(cfgBytes) > maxConfig || len(cfgBytes) < hdrLen || string(cfgBytes[:len(configMagic)]) != configMagic || cfgBytes[len(configMagic)] != 1 {
		return cfg, fmt.Errorf("config: %w: bad header", ErrCorrupt)
	}
	if !bytes.Equal(cfgBytes[len(configMagic)+1:hdrLen], km.repoID[:]) {
		return cfg, fmt.Errorf("config belongs to another repository than the key: %w", ErrCorrupt)
	}
	a, err := crypto.NewAEAD(km.dataKey)
	if err != nil {
		return cfg, err
	}
	cj, err := a.Open(nil, cfgBytes[hdrLen:], append([]byte(configAAD), cfgBytes[:hdrLen]...))
	if err != nil {
		return cfg, fmt.Errorf("config: %w: %w", ErrCorrupt, err)
	}
	if err := json.Unmarshal(cj, &cfg); err != nil {
		return cfg, fmt.Errorf("config: %w: %v", ErrCorrupt, err)
	}
	if cfg.Version != FormatVersion || cfg.Cipher != CipherAES256GCM || cfg.IDHash != IDBlake3Keyed || cfg.Chunker != ChunkerFastCDC {
		return cfg, fmt.Errorf("unsupported format version %d (%s, %s, %s)", cfg.Version, cfg.Cipher, cfg.IDHash, cfg.Chunker)
	}
	if err := cfg.ChunkSize.Validate(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// encodeConfig seals the config object.
func encodeConfig(cfg Config, km keyMaterial, a *crypto.AEAD) ([]byte, error) {
	cj, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	hdr := append([]byte(configMagic+"\x01"), km.repoID[:]...)
	return a.Seal(append([]byte(nil), hdr...), cj, append([]byte(configAAD), hdr...)), nil
}
