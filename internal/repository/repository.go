// Package repository is the vault repository engine: content-defined
// chunking, keyed content IDs, per-blob compression, authenticated
// encryption, packs, indexes, tree blobs (package snapshot) and manifests on
// a blob.Storage. The byte format is specified in
// docs/design/repository-format.md.
package repository

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
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
	// InFlight caps the bytes of chunks queued for workers (default 8 MiB,
	// at least the maximum chunk size) when Buffers is nil.
	InFlight int
	// Buffers, when set, is the budget of pack buffers and queued chunks
	// shared by every write session of every repository opened with it
	// (a server passes one to all its vaults); nil gives the repository a
	// budget of its own: Workers+Uploads-1 shared pack buffers (one
	// session's worth, with the one each session owns) and InFlight bytes.
	Buffers *Buffers
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
		o.InFlight = 8 << 20
	}
	if o.Buffers == nil {
		o.Buffers = NewBuffers(o.Workers+o.Uploads-1, o.InFlight)
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
	// idxMu serialises index (re)loads with the additions of a session's
	// packs, so that a reload cannot drop packs a session just indexed.
	idxMu sync.Mutex
	// idxFiles names the index files the in-memory index reflects
	// (guarded by idxMu; with dmg.names, what refreshIndex compares with).
	idxFiles map[[32]byte]bool
	// dmg holds the damaged blob copies known (see damaged.go); dmgMu
	// serialises writers of records.
	dmg   atomic.Pointer[damageSet]
	dmgMu sync.Mutex

	bufMu  sync.Mutex
	closed bool
	// scratch holds decryption buffers of openBlob, sealedBufs the sealed
	// blobs LoadBlob reads.
	scratch, sealedBufs bufPool
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
	r := &Repository{st: st, opts: opts, cfg: cfg, repoID: km.repoID, aead: a, hasher: h, gear: g, codec: codec,
		idxFiles: map[[32]byte]bool{}}
	r.idx.Store(index.New())
	r.dmg.Store(&damageSet{})
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
	lastErr := ErrWrongKey
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

// LeaseDuration returns how long a lock lease lasts without refresh.
func (r *Repository) LeaseDuration() time.Duration { return r.opts.LeaseDuration }

// Logger returns the repository's logger.
func (r *Repository) Logger() *slog.Logger { return r.opts.Logger }
