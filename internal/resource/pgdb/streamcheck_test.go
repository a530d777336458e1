package pgdb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource"
	"coffer/internal/resource/pgdb"
)

// streamVerified is how many tables a restore verified by their stream.
func streamVerified(t testing.TB, res resource.RestoreResult) int64 {
	t.Helper()
	b, err := json.Marshal(res.Details)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		N *int64 `json:"tables_verified_by_stream"`
	}
	if err := json.Unmarshal(b, &d); err != nil || d.N == nil {
		t.Fatalf("restore details %s: no tables_verified_by_stream (%v)", b, err)
	}
	return *d.N
}

// streamDB is a database of the rich schema plus app.prices, whose money
// column's text depends on the session's lc_monetary.
func streamDB(t *testing.T, prefix string) *backup.Resource {
	t.Helper()
	s := server(t)
	src := newDB(t, s, "pg", uniqueName(prefix), 2000)
	s.Exec(t, src.ID, `CREATE TABLE app.prices (id int PRIMARY KEY, price money);
		INSERT INTO app.prices SELECT i, i * 1.25 FROM generate_series(1, 100) i;`)
	return src
}

// A backup checks each table's COPY stream against the server's checksum
// of its rows where the stream can stand for them, and the restore then
// verifies those tables as it loads them (stream hash, COPY's row
// count) instead of reading them again: not app.customers (a generated
// column), nor app.prices (money), which are read again. The restored
// database is the source's. A recovery point of the previous format (no
// stream checked, SHA-256 of the streams) still restores, every table
// verified by reading it, and a backup on top of it stores deltas.
func TestStreamVerifiedRestore(t *testing.T) {
	s := server(t)
	src := streamDB(t, "streamcheck")
	for _, previous := range []bool{false, true} {
		p := newPlugin(t)
		if previous {
			pgdb.SetPreviousFormat(p)
		}
		repo := memRepo(t)
		snap, _, _ := backupDB(t, p, repo, src, nil)
		checked := 0
		for _, tb := range manifestOf(t, snap).Tables {
			q := tb.Schema + "." + tb.Name
			want := pgdb.StreamCheckV1
			if previous || q == "app.customers" || q == "app.prices" {
				want = ""
			}
			if tb.StreamCheck != want {
				t.Errorf("previous format %v: table %s stream check %q, want %q", previous, q, tb.StreamCheck, want)
			}
			if (tb.StreamBLAKE3 == "") != previous || (tb.StreamSHA256 == "") == previous {
				t.Errorf("previous format %v: table %s stream hashes BLAKE3 %q, SHA-256 %q", previous, q, tb.StreamBLAKE3, tb.StreamSHA256)
			}
			if tb.StreamCheck != "" {
				checked++
				if tb.ChecksumMethod != pgdb.ChecksumText {
					t.Errorf("table %s checked with method %s", q, tb.ChecksumMethod)
				}
			}
		}
		if !previous && checked < 6 {
			t.Errorf("%d tables checked, want every table but app.customers and app.prices", checked)
		}
		p = newPlugin(t) // restores know both formats
		id := uniqueName("streamcheck-copy")
		res, err := restoreDB(t, p, snap, src, id, nil)
		if err != nil {
			t.Fatalf("previous format %v: restore: %v", previous, err)
		}
		if n := streamVerified(t, res); n != int64(checked) {
			t.Errorf("previous format %v: %d tables verified by their stream, want %d", previous, n, checked)
		}
		if !strings.Contains(res.Summary, "every table verified (row count and checksum)") {
			t.Errorf("summary %q", res.Summary)
		}
		sameDatabase(t, s, src.ID, s, id)
		if !previous {
			continue
		}
		// A backup of this Coffer on top of the previous format's: the
		// changed tables as deltas on rows checked by their SHA-256,
		// every table then stream-checked and BLAKE3-hashed.
		s.Exec(t, src.ID, `UPDATE app.orders SET note = 'next ' || id WHERE id % 40 = 3`)
		next, _, _ := backupDB(t, newPlugin(t), repo, src, &snap)
		checked = 0
		for _, tb := range manifestOf(t, next).Tables {
			if tb.Name == "orders" && len(tb.Layers) != 2 {
				t.Errorf("app.orders in %d layers on the previous format's backup, want a delta", len(tb.Layers))
			}
			if tb.StreamCheck != "" {
				checked++
			}
		}
		id = uniqueName("streamcheck-copy")
		res, err = restoreDB(t, newPlugin(t), next, src, id, nil)
		if err != nil {
			t.Fatalf("restore on the previous format: %v", err)
		}
		if n := streamVerified(t, res); n != int64(checked) || checked < 6 {
			t.Errorf("on the previous format: %d tables verified by their stream, %d checked", n, checked)
		}
		sameDatabase(t, s, src.ID, s, id)
	}
}

// tamperLoader changes the blobs it is told to as they are read: what a
// damaged stream or a wrong delta composition would give the restore.
type tamperLoader struct {
	resource.Loader
	ids    map[repository.ID]bool
	change func([]byte) []byte
}

func (l tamperLoader) LoadBlob(ctx context.Context, typ repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	b, err := l.Loader.LoadBlob(ctx, typ, id, buf)
	if err == nil && l.ids[id] {
		b = l.change(bytes.Clone(b))
	}
	return b, err
}

// tableBlobs are the blobs of each layer of a table's stored rows.
func tableBlobs(t *testing.T, snap resource.Snapshot, schema, name string) [][]repository.ID {
	t.Helper()
	ctx := context.Background()
	root, err := snapshot.LoadTree(ctx, snap.Loader, snap.Root)
	if err != nil {
		t.Fatal(err)
	}
	var content []repository.ID
	for _, n := range root.Nodes {
		if n.Name != "tables" {
			continue
		}
		sub, err := snapshot.LoadTree(ctx, snap.Loader, n.Subtree)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range sub.Nodes {
			if tn.Name == schema+"."+name {
				content = tn.Content
			}
		}
	}
	for _, tb := range manifestOf(t, snap).Tables {
		if tb.Schema != schema || tb.Name != name {
			continue
		}
		if len(tb.Layers) == 0 {
			return [][]repository.ID{content}
		}
		var out [][]repository.ID
		for _, ly := range tb.Layers {
			out = append(out, content[:ly.Blobs])
			content = content[ly.Blobs:]
		}
		return out
	}
	t.Fatalf("no table %s.%s", schema, name)
	return nil
}

// A restore whose rows differ from those backed up, the same number of
// them, is refused as corrupt by the verification of a stream-checked
// table, with nothing left behind: a row of the base layer changed, a
// row a delta layer inserts changed, the delta layers composed with one
// operation changed.
func TestStreamVerifiedRestoreRefusesOtherRows(t *testing.T) {
	s := server(t)
	src := streamDB(t, "streamtamper")
	p := newPlugin(t)
	repo := memRepo(t)
	snap, _, _ := backupDB(t, p, repo, src, nil)
	for day := range 2 {
		s.Exec(t, src.ID, `UPDATE app.orders SET note = 'day `+itoa(day)+` ' || id WHERE id % 50 = `+itoa(day))
		parent := snap
		snap, _, _ = backupDB(t, p, repo, src, &parent)
	}
	layers := tableBlobs(t, snap, "app", "orders")
	if len(layers) != 3 {
		t.Fatalf("app.orders in %d layers, want a base and two deltas", len(layers))
	}
	for _, tb := range manifestOf(t, snap).Tables {
		if tb.Name == "orders" && tb.StreamCheck != pgdb.StreamCheckV1 {
			t.Fatalf("app.orders not stream-checked: %q", tb.StreamCheck)
		}
	}
	// flip changes a character of a row (a hex digit of its note, or
	// the day's note), keeping its length and the number of rows: the
	// note of the first row starting with one of the markers that the
	// blob holds whole.
	flip := func(note string, markers ...string) func([]byte) []byte {
		return func(b []byte) []byte {
			for _, m := range markers {
				i := bytes.Index(b, []byte(m))
				if i < 0 {
					continue
				}
				end := bytes.IndexByte(b[i+1:], '\n')
				j := bytes.Index(b[i:], []byte(note))
				if end < 0 || j < 0 || j+len(note) >= end+1 {
					continue
				}
				b[i+j+len(note)] ^= 1
				return b
			}
			return b
		}
	}
	for _, tc := range []struct {
		name   string
		blobs  []repository.ID
		change func([]byte) []byte
	}{
		// Rows 778, 779, 781... have notes and were not updated.
		{"base row changed", layers[0], flip("\tnote ", "\n778\t", "\n779\t", "\n781\t", "\n782\t", "\n784\t")},
		{"inserted row changed", layers[2], flip("\tday 1 ", "\tday 1 ")},
		{"copy operation changed", layers[1][:1], func(b []byte) []byte {
			// The first "C n" becomes "S n": the layer consumes the same
			// rows below it but gives n fewer.
			i := 0
			if !bytes.HasPrefix(b, []byte("C ")) {
				if i = bytes.Index(b, []byte("\nC ")) + 1; i == 0 {
					t.Error("no copy operation in the delta")
					return b
				}
			}
			b[i] = 'S'
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := map[repository.ID]bool{}
			for _, id := range tc.blobs {
				ids[id] = true
			}
			bad := resource.Snapshot{Loader: tamperLoader{Loader: snap.Loader, ids: ids, change: tc.change}, Root: snap.Root}
			id := uniqueName("streamtamper-copy")
			_, err := restoreDB(t, newPlugin(t), bad, src, id, nil)
			if !errors.Is(err, resource.ErrCorrupt) || !strings.Contains(err.Error(), "app.orders") {
				t.Fatalf("restore of changed rows: %v, want refused as corrupt naming app.orders", err)
			}
			for _, db := range s.Databases(t) {
				if db == id || strings.HasPrefix(db, pgdb.StagingPrefix+"JOB-"+id) {
					t.Errorf("refused restore left %s", db)
				}
			}
		})
	}
}
