package pgdb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/zeebo/blake3"

	"coffer/internal/repository"
	"coffer/internal/repository/chunker"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource"
)

// Snapshot tree of a database backup (docs/design/postgres-databases.md):
//
//	coffer-postgres.json   the manifest (versions, sizes, tables, checksums)
//	pre-data.pgdump        pg_dump -Fc --section=pre-data (timestamp fixed)
//	post-data.pgdump       pg_dump -Fc --section=post-data
//	large-objects          every large object (header line + bytes)
//	tables/<schema>.<table> the table's rows in COPY text format
const (
	manifestName  = "coffer-postgres.json"
	preDataName   = "pre-data.pgdump"
	postDataName  = "post-data.pgdump"
	largeObjsName = "large-objects"
	tablesDir     = "tables"
)

// FormatVersion is the manifest's format; readers refuse newer ones.
const FormatVersion = 1

// ChecksumAlgorithm names how table checksums are computed (checksumSQL):
// the row count and the sum of a mixed 64-bit hash of every row, by the
// table's ChecksumMethod, in the snapshot, with sessionSettings.
const ChecksumAlgorithm = "row-hash-sum64-v2"

// DefaultChunkSize is the chunk size distribution of database streams:
// small, so that a changed row dirties little (the repository default of
// 1 MiB chunks would re-store a megabyte around every changed row).
var DefaultChunkSize = chunker.Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}

// Manifest describes one database backup; it is stored with it.
type Manifest struct {
	Format        int    `json:"format"`
	Engine        string `json:"engine"`
	ServerVersion string `json:"server_version"`
	ServerMajor   int    `json:"server_major"`
	PgDumpVersion string `json:"pg_dump_version"`
	PgDumpMajor   int    `json:"pg_dump_major"`
	// SourceServer is the database_servers[].id the database was on (a
	// restore's default target server).
	SourceServer      string `json:"source_server"`
	Database          string `json:"database"`
	Encoding          string `json:"encoding"`
	Collate           string `json:"collate"`
	CType             string `json:"ctype"`
	DatabaseSize      int64  `json:"database_size"`
	ChecksumAlgorithm string `json:"checksum_algorithm"`
	// ChecksumProbes are the source server's hashes of fixed values by
	// method: a restore compares checksums only where its server gives the
	// same.
	ChecksumProbes map[string]string `json:"checksum_probes"`
	// ChunkSize are the sizes the table and large-object streams were
	// chunked with (zero: the repository's default). Later backups of the
	// database keep them.
	ChunkSize    chunker.Params `json:"chunk_size"`
	PreDataSize  int64          `json:"pre_data_size"`
	PostDataSize int64          `json:"post_data_size"`
	Tables       []Table        `json:"tables"`
	Sequences    []Sequence     `json:"sequences"`
	LargeObjects LargeObjects   `json:"large_objects"`
	// Roles are the roles the dump's privileges name (grantees, default
	// privilege owners); a restore needs them on the target server.
	Roles []string `json:"roles"`
	// TableIndexes says Table.Indexes and Table.Constraints are recorded
	// (backups before them build every index after the last table).
	TableIndexes bool `json:"table_indexes,omitempty"`
}

// Table is one table's data.
type Table struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	// Columns are the COPY column list (stored generated columns are
	// computed again on restore).
	Columns []string `json:"columns"`
	// Signature identifies the row type (column names, types, generated);
	// a backup reuses the parent's stream only when it is equal.
	Signature string `json:"signature"`
	// Order is how the rows are sorted: the primary key's columns, or
	// empty for the table's physical order.
	Order []string `json:"order,omitempty"`
	// Layers say how the rows are stored: the node's blobs are the
	// layers' blobs in order; the first layer is the rows as COPY text,
	// each later one a row delta (delta.go) on what the layers before it
	// give. Empty: one layer, the whole node.
	Layers []Layer `json:"layers,omitempty"`
	// StreamBLAKE3 is the BLAKE3 hash of the rows as COPY text (what the
	// layers give); restores check it. Backups before it recorded the
	// SHA-256 instead (StreamSHA256; empty in later ones), which restores
	// check where there is no StreamBLAKE3.
	StreamBLAKE3 string `json:"stream_blake3,omitempty"`
	StreamSHA256 string `json:"stream_sha256"`
	// StreamCheck says how the stream was checked at backup time against
	// Checksum, which a restore then need not recompute on the server:
	// StreamCheckV1, the client's ChecksumText checksum of the stream
	// equalled the server's (streamsum.go). Empty (backups before it, or
	// a table not checked): a restore reads the loaded table again to
	// verify it. Restores treat values they do not know as empty.
	StreamCheck    string `json:"stream_check,omitempty"`
	Rows           int64  `json:"rows"`
	Checksum       string `json:"checksum"`
	ChecksumMethod string `json:"checksum_method"`
	Bytes          int64  `json:"bytes"` // COPY text bytes
	// Indexes and Constraints name the table's indexes and its primary
	// key, unique and exclusion constraints (Manifest.TableIndexes): a
	// restore builds their post-data entries as soon as the table's rows
	// are in, while other tables still load.
	Indexes     []string `json:"indexes,omitempty"`
	Constraints []string `json:"constraints,omitempty"`

	// streamCheckable: no generated or money column (listTables).
	streamCheckable bool
}

// streamHash is a hash to compute over t's rows and the value recorded
// for them (BLAKE3, or SHA-256 in older backups); nil when none is.
func (t *Table) streamHash() (h hash.Hash, want, name string) {
	switch {
	case t.StreamBLAKE3 != "":
		return blake3.New(), t.StreamBLAKE3, "BLAKE3"
	case t.StreamSHA256 != "":
		return sha256.New(), t.StreamSHA256, "SHA-256"
	}
	return nil, "", ""
}

// Layer is one layer of a table's stored rows.
type Layer struct {
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
}

// layers are t's layers, one whole layer when none are recorded (Bytes
// is then the rows' size; the node's blobs are all of it).
func (t *Table) layers() []Layer {
	if len(t.Layers) > 0 {
		return t.Layers
	}
	return []Layer{{Blobs: -1, Bytes: t.Bytes}}
}

// layersReader gives the rows the layers stored in content make.
func layersReader(ctx context.Context, l resource.Loader, content []repository.ID, layers []Layer) (io.ReadCloser, error) {
	if len(layers) == 1 && layers[0].Blobs < 0 {
		return newBlobReader(ctx, l, content, 8), nil
	}
	total := 0
	for _, ly := range layers {
		if ly.Blobs < 0 {
			return nil, fmt.Errorf("%w: bad layer", repository.ErrCorrupt)
		}
		total += ly.Blobs
	}
	if total != len(content) {
		return nil, fmt.Errorf("%w: layers of %d blobs for %d", repository.ErrCorrupt, total, len(content))
	}
	lr := &layered{}
	base := newBlobReader(ctx, l, content[:layers[0].Blobs], 8)
	lr.closers = append(lr.closers, base)
	var deltas []io.Reader
	off := layers[0].Blobs
	for _, ly := range layers[1:] {
		delta := newBlobReader(ctx, l, content[off:off+ly.Blobs], 2)
		off += ly.Blobs
		lr.closers = append(lr.closers, delta)
		deltas = append(deltas, delta)
	}
	lr.r = composeLayers(base, deltas)
	return lr, nil
}

type layered struct {
	r       io.Reader
	closers []io.Closer
}

func (l *layered) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if errors.Is(err, errBadDelta) {
		err = fmt.Errorf("%w: %w", repository.ErrCorrupt, err)
	}
	return n, err
}

func (l *layered) Close() error {
	for i := len(l.closers) - 1; i >= 0; i-- {
		_ = l.closers[i].Close()
	}
	return nil
}

// Sequence is a sequence's state.
type Sequence struct {
	Schema    string `json:"schema"`
	Name      string `json:"name"`
	LastValue int64  `json:"last_value"`
	IsCalled  bool   `json:"is_called"`
}

// LargeObjects summarize the large objects.
type LargeObjects struct {
	Count    int64  `json:"count"`
	Bytes    int64  `json:"bytes"`
	Checksum string `json:"checksum"`
}

func (t *Table) qualified() string { return t.Schema + "." + t.Name }

// fileName is a table's node name: schema and table, each with bytes
// outside [A-Za-z0-9_-] percent-encoded, joined by a dot.
func (t *Table) fileName() string { return escapeName(t.Schema) + "." + escapeName(t.Name) }

func escapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// fileNode is a data file of the tree.
func fileNode(name string, ids []repository.ID, size int64) snapshot.Node {
	if ids == nil {
		ids = []repository.ID{}
	}
	return snapshot.Node{Name: name, Type: snapshot.TypeFile, Mode: 0o600, Size: size, Content: ids}
}

// saveTree stores a tree blob through any session.
func saveTree(ctx context.Context, s resource.Saver, nodes []snapshot.Node) (repository.ID, error) {
	t := &snapshot.Tree{Nodes: nodes}
	sortNodes(t.Nodes)
	b, err := snapshot.EncodeTree(t)
	if err != nil {
		return repository.ID{}, err
	}
	return s.SaveBlob(ctx, repository.TreeBlob, b)
}

func sortNodes(n []snapshot.Node) {
	for i := 1; i < len(n); i++ {
		for j := i; j > 0 && n[j].Name < n[j-1].Name; j-- {
			n[j], n[j-1] = n[j-1], n[j]
		}
	}
}

// stored is a backup read back: its manifest and the nodes of its files.
type stored struct {
	loader resource.Loader
	man    *Manifest
	files  map[string]snapshot.Node // root files by name
	tables map[string]snapshot.Node // table files by name
}

// errNotDatabase marks a snapshot that is not a database backup.
var errNotDatabase = errors.New("the recovery point is not a PostgreSQL database backup")

// maxManifest bounds the manifest read back.
const maxManifest = 256 << 20

// load reads a database backup's tree and manifest.
func load(ctx context.Context, l resource.Loader, root repository.ID) (*stored, error) {
	t, err := snapshot.LoadTree(ctx, l, root)
	if err != nil {
		return nil, err
	}
	st := &stored{loader: l, files: map[string]snapshot.Node{}, tables: map[string]snapshot.Node{}}
	for _, n := range t.Nodes {
		if n.Type == snapshot.TypeDir && n.Name == tablesDir {
			sub, err := snapshot.LoadTree(ctx, l, n.Subtree)
			if err != nil {
				return nil, err
			}
			for _, tn := range sub.Nodes {
				st.tables[tn.Name] = tn
			}
			continue
		}
		st.files[n.Name] = n
	}
	mn, ok := st.files[manifestName]
	if !ok || mn.Size > maxManifest {
		return nil, errNotDatabase
	}
	var buf bytes.Buffer
	br := newBlobReader(ctx, l, mn.Content, 1)
	_, err = io.Copy(&buf, br)
	_ = br.Close()
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", repository.ErrCorrupt, err)
	}
	if m.Format > FormatVersion || m.Format < 1 {
		return nil, fmt.Errorf("the recovery point has database backup format %d; this Coffer reads up to %d", m.Format, FormatVersion)
	}
	st.man = &m
	for i := range m.Tables {
		if _, ok := st.tables[m.Tables[i].fileName()]; !ok {
			return nil, fmt.Errorf("%w: table %s has no data file", repository.ErrCorrupt, m.Tables[i].qualified())
		}
	}
	return st, nil
}

// ReadManifest reads the manifest of a database backup.
func ReadManifest(ctx context.Context, l resource.Loader, root repository.ID) (*Manifest, error) {
	st, err := load(ctx, l, root)
	if err != nil {
		return nil, err
	}
	return st.man, nil
}
