package repository

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/index"
)

// DamagedPrefix holds damage records: which stored copies of blobs were
// found damaged (a format addition that older readers ignore, see
// docs/design/repository-format.md).
const DamagedPrefix = "damaged/"

const (
	damagedAAD     = "coffer damaged v1"
	damagedVersion = 1
	maxDamagedSize = 16 << 20
	// MaxDamageEntries bounds the entries of one damage record.
	MaxDamageEntries = 100_000
)

// DamagedBlob is one damaged copy of a blob: the blob as stored in one
// pack. Other copies of the same blob (in other packs) are not affected.
type DamagedBlob struct {
	Type  BlobType
	ID    ID
	Pack  [32]byte
	Found time.Time
}

func (d DamagedBlob) key() index.Key { return index.Key{Type: uint8(d.Type), ID: d.ID} }

// DamageRecord is one object under damaged/.
type DamageRecord struct {
	Name  string
	Blobs []DamagedBlob
}

// UnreadableObject is an object that could not be read or decoded.
type UnreadableObject struct {
	Name string
	Err  error
}

type damagedJSON struct {
	Version int                `json:"version"`
	Blobs   []damagedEntryJSON `json:"blobs"`
}

type damagedEntryJSON struct {
	Type  uint8     `json:"type"`
	ID    string    `json:"id"`
	Pack  string    `json:"pack"`
	Found time.Time `json:"found"`
}

func (r *Repository) encodeDamage(blobs []DamagedBlob) ([]byte, error) {
	j := damagedJSON{Version: damagedVersion, Blobs: make([]damagedEntryJSON, 0, len(blobs))}
	for _, d := range blobs {
		j.Blobs = append(j.Blobs, damagedEntryJSON{Type: uint8(d.Type), ID: d.ID.String(), Pack: hex.EncodeToString(d.Pack[:]), Found: d.Found.UTC()})
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	return r.aead.Seal(nil, b, []byte(damagedAAD)), nil
}

// decodeDamage authenticates and decodes the record object name.
func (r *Repository) decodeDamage(name string, b []byte) ([]DamagedBlob, error) {
	if len(b) > maxDamagedSize {
		return nil, fmt.Errorf("%s: %w: %d bytes", name, ErrCorrupt, len(b))
	}
	if want := strings.TrimPrefix(name, DamagedPrefix); hex.EncodeToString(sum(b)) != want {
		return nil, fmt.Errorf("%s: %w: content does not match its name", name, ErrCorrupt)
	}
	p, err := r.aead.Open(nil, b, []byte(damagedAAD))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrCorrupt, err)
	}
	var j damagedJSON
	if err := json.Unmarshal(p, &j); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrCorrupt, err)
	}
	if j.Version != damagedVersion {
		return nil, fmt.Errorf("%s: %w: unknown version %d", name, ErrCorrupt, j.Version)
	}
	if len(j.Blobs) > MaxDamageEntries {
		return nil, fmt.Errorf("%s: %w: %d entries", name, ErrCorrupt, len(j.Blobs))
	}
	out := make([]DamagedBlob, 0, len(j.Blobs))
	for _, e := range j.Blobs {
		id, err := ParseID(e.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: blob id: %v", name, ErrCorrupt, err)
		}
		pk, err := ParseID(e.Pack)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: pack id: %v", name, ErrCorrupt, err)
		}
		if e.Found.IsZero() {
			e.Found = time.Unix(0, 0).UTC()
		}
		if t := BlobType(e.Type); t != DataBlob && t != TreeBlob {
			return nil, fmt.Errorf("%s: %w: blob type %d", name, ErrCorrupt, e.Type)
		}
		out = append(out, DamagedBlob{Type: BlobType(e.Type), ID: id, Pack: [32]byte(pk), Found: e.Found})
	}
	return out, nil
}

// ReadDamageRecords lists damaged/ and reads every record on its own (in
// name order); records that cannot be read are returned in unreadable. A
// listing error or a cancelled context is err.
func (r *Repository) ReadDamageRecords(ctx context.Context) (records []DamageRecord, unreadable []UnreadableObject, err error) {
	var names []string
	if err := r.st.List(ctx, DamagedPrefix, func(i blob.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("list damage records: %w", err)
	}
	slices.Sort(names)
	for _, n := range names {
		b, err := r.st.Get(ctx, n, 0, -1)
		var blobs []DamagedBlob
		if err == nil {
			blobs, err = r.decodeDamage(n, b)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if errors.Is(err, blob.ErrNotFound) {
				continue // removed by a prune meanwhile
			}
			unreadable = append(unreadable, UnreadableObject{Name: n, Err: err})
			continue
		}
		records = append(records, DamageRecord{Name: n, Blobs: blobs})
	}
	return records, unreadable, nil
}

// WriteDamageRecord stores blobs (at most MaxDamageEntries) as one new
// record and returns its name (prune uses it to carry over the entries
// that still matter).
func (r *Repository) WriteDamageRecord(ctx context.Context, blobs []DamagedBlob) (string, error) {
	if len(blobs) > MaxDamageEntries {
		return "", fmt.Errorf("write damage record: %d entries exceed %d", len(blobs), MaxDamageEntries)
	}
	sealed, err := r.encodeDamage(blobs)
	if err != nil {
		return "", err
	}
	id := sum32(sealed)
	name := DamagedPrefix + hex.EncodeToString(id[:])
	if err := r.st.Put(ctx, name, sealed, blob.PutOptions{IfAbsent: true}); err != nil && !errors.Is(err, blob.ErrAlreadyExists) {
		return "", fmt.Errorf("write damage record: %w", err)
	}
	return name, nil
}

// damageSet is the damaged copies known in memory (immutable; replaced
// as a whole).
type damageSet struct {
	names map[string]bool                 // records it reflects
	at    map[index.Key]map[[32]byte]bool // blob → packs whose copy is damaged
}

func (d *damageSet) has(k index.Key, pack [32]byte) bool {
	if d == nil {
		return false
	}
	return d.at[k][pack]
}

func (d *damageSet) with(name string, blobs []DamagedBlob) *damageSet {
	n := &damageSet{names: make(map[string]bool, len(d.names)+1), at: make(map[index.Key]map[[32]byte]bool, len(d.at)+len(blobs))}
	for k, v := range d.names {
		n.names[k] = v
	}
	for k, v := range d.at {
		n.at[k] = v // inner maps are never modified once shared
	}
	if name != "" {
		n.names[name] = true
	}
	for _, b := range blobs {
		k := b.key()
		inner := make(map[[32]byte]bool, len(n.at[k])+1)
		for p := range n.at[k] {
			inner[p] = true
		}
		inner[b.Pack] = true
		n.at[k] = inner
	}
	return n
}

// damagedCopy reports whether the copy of blob k in pack is recorded as
// damaged.
func (r *Repository) damagedCopy(k index.Key, pack [32]byte) bool {
	return r.dmg.Load().has(k, pack)
}

// DamagedCopy reports whether the copy of the blob in the given pack is
// recorded as damaged.
func (r *Repository) DamagedCopy(t BlobType, id ID, pack [32]byte) bool {
	return r.damagedCopy(index.Key{Type: uint8(t), ID: id}, pack)
}

// RecordDamaged persists that these copies of blobs are damaged (those not
// recorded yet, as one new record under damaged/) and returns how many it
// recorded. From then on the blob counts as absent for deduplication: the
// next write session that meets its content stores it again, and reads
// prefer the intact copy (restic's repair flow). Safe while other sessions
// run: the record is a new object, and prune consolidates records only
// under the exclusive lock.
func (r *Repository) RecordDamaged(ctx context.Context, blobs []DamagedBlob) (int, error) {
	r.dmgMu.Lock()
	defer r.dmgMu.Unlock()
	cur := r.dmg.Load()
	var fresh []DamagedBlob
	seen := map[DamagedBlob]bool{}
	for _, b := range blobs {
		if b.Found.IsZero() {
			b.Found = r.opts.Clock.Now()
		}
		k := DamagedBlob{Type: b.Type, ID: b.ID, Pack: b.Pack}
		if cur.has(b.key(), b.Pack) || seen[k] {
			continue
		}
		seen[k] = true
		fresh = append(fresh, b)
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	for rest := fresh; len(rest) > 0; {
		n := min(len(rest), MaxDamageEntries)
		name, err := r.WriteDamageRecord(ctx, rest[:n])
		if err != nil {
			return 0, err
		}
		cur = cur.with(name, rest[:n])
		r.dmg.Store(cur)
		rest = rest[n:]
	}
	for _, b := range fresh {
		r.opts.Logger.Warn("repository: damaged blob recorded; the next backup of its content stores it again",
			"blob", fmt.Sprintf("%v/%v", b.Type, b.ID), "pack", PackName(b.Pack))
	}
	return len(fresh), nil
}

// recordReadDamage records a blob that LoadBlob found damaged; errors are
// logged (the read fails either way).
func (r *Repository) recordReadDamage(ctx context.Context, t BlobType, id ID, pack [32]byte) {
	if _, err := r.RecordDamaged(context.WithoutCancel(ctx), []DamagedBlob{{Type: t, ID: id, Pack: pack}}); err != nil {
		r.opts.Logger.Warn("repository: damaged blob not recorded", "blob", fmt.Sprintf("%v/%v", t, id), "err", err)
	}
}
