package pgdb_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coffer/internal/repository/chunker"
	"coffer/internal/resource"
	"coffer/internal/resource/pgdb"
)

const bankSchema = `
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE transfers (id bigserial PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount bigint NOT NULL);
CREATE TABLE totals (k int PRIMARY KEY, transfers bigint NOT NULL);
CREATE TABLE zz_log (id bigserial PRIMARY KEY, note text);
INSERT INTO accounts SELECT i, 1000 FROM generate_series(1, 500) i;
INSERT INTO totals VALUES (1, 0);
INSERT INTO zz_log (note) SELECT 'seed ' || i FROM generate_series(1, 20000) i;`

// transfer moves money between two accounts, logs it and counts it, in
// one transaction: in any consistent snapshot the balances sum to the
// start, the log explains every balance, and the count equals the log.
func transfer(ctx context.Context, c *pgx.Conn, rnd *rand.Rand) error {
	src, dst, amount := 1+rnd.IntN(500), 1+rnd.IntN(500), 1+rnd.IntN(50)
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, q := range []string{
		fmt.Sprintf("UPDATE accounts SET balance = balance - %d WHERE id = %d", amount, src),
		fmt.Sprintf("INSERT INTO zz_log (note) VALUES ('transfer %d')", amount),
		fmt.Sprintf("INSERT INTO transfers (src, dst, amount) VALUES (%d, %d, %d)", src, dst, amount),
		fmt.Sprintf("UPDATE accounts SET balance = balance + %d WHERE id = %d", amount, dst),
		"UPDATE totals SET transfers = transfers + 1",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// Writes running during the backup (continuously, and in bursts before
// every table is read) never make an inconsistent restore: the restored
// database is the database as of one instant.
func TestWritesDuringBackup(t *testing.T) {
	s := server(t)
	name := uniqueName("bank")
	s.CreateDB(t, name)
	s.Exec(t, name, bankSchema)
	src := pgdb.NewResource("us-east-1", "111111111111", name, "pg", name, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writer := s.Connect(t, name)
	burst := s.Connect(t, name)
	rnd := rand.New(rand.NewPCG(1, 2))
	// Transfers before the backup: exactly these are in its snapshot.
	const before = 200
	for range before {
		if err := transfer(ctx, writer, rnd); err != nil {
			t.Fatal(err)
		}
	}
	var done atomic.Int64
	var wg sync.WaitGroup
	var werr error
	p := newPlugin(t)
	p.Workers = 1 // tables one after the other: the bursts fall between them
	pgdb.SetHooks(p, func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(3, 4))
			for ctx.Err() == nil {
				if err := transfer(ctx, writer, r); err != nil {
					if ctx.Err() == nil {
						werr = err
					}
					return
				}
				done.Add(1)
			}
		}()
	}, func(string) {
		for range 50 {
			if err := transfer(context.Background(), burst, rnd); err != nil {
				t.Error(err)
				return
			}
			done.Add(1)
		}
		time.Sleep(20 * time.Millisecond)
	})
	repo := memRepo(t)
	snap, _, _ := backupDB(t, p, repo, src, nil)
	cancel()
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	t.Logf("%d transfers committed while the backup ran", done.Load())
	id := uniqueName("bank-copy")
	if _, err := restoreDB(t, newPlugin(t), snap, src, id, nil); err != nil {
		t.Fatal(err)
	}
	c := s.Connect(t, id)
	var sum, n, counted, inLog, explained int64
	q := `SELECT (SELECT sum(balance) FROM accounts), (SELECT count(*) FROM transfers), (SELECT transfers FROM totals),
		(SELECT count(*) FROM zz_log WHERE note LIKE 'transfer %'),
		(SELECT count(*) FROM accounts a WHERE a.balance = 1000
			- coalesce((SELECT sum(amount) FROM transfers WHERE src = a.id), 0)
			+ coalesce((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0))`
	if err := c.QueryRow(context.Background(), q).Scan(&sum, &n, &counted, &inLog, &explained); err != nil {
		t.Fatal(err)
	}
	if sum != 500*1000 || n != counted || n != inLog || explained != 500 {
		t.Fatalf("restore is not one instant: balances sum to %d (want %d), %d transfers, counter %d, %d logged, %d of 500 balances explained",
			sum, 500*1000, n, counted, inLog, explained)
	}
	if n != before {
		t.Fatalf("restored %d transfers: the snapshot, taken before %d more were committed, holds exactly the %d before it", n, done.Load(), before)
	}
}

// A second backup after 1% of the rows changed stores a small fraction of
// the first, whether the changes are recent rows changed and added (as
// daily traffic does) or rows changed uniformly through the table (row
// deltas; chunks alone would re-store nearly every chunk).
func TestIncrementalStoresLittle(t *testing.T) {
	s := server(t)
	rows := 200000
	if testing.Short() {
		rows = 40000
	}
	for _, tc := range []struct {
		name   string
		change string
		limit  float64 // 0: report only
	}{
		{"recent", `UPDATE app.orders SET amount = amount + 1, note = 'changed' WHERE id > (SELECT max(id) FROM app.orders) - %[1]d / 2;
			INSERT INTO app.orders (customer_id, amount, note) SELECT 1 + i %% 100, i, 'new' FROM generate_series(1, %[1]d / 2) i;`, 0.10},
		{"uniform", `UPDATE app.orders SET amount = amount + 1 WHERE id %% 100 = 42 AND %[1]d > 0;`, 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newDB(t, s, "pg", uniqueName("incr"), rows)
			p := newPlugin(t)
			repo := memRepo(t)
			snap, first, st1 := backupDB(t, p, repo, src, nil)
			var orders int64
			if err := s.Connect(t, src.ID).QueryRow(context.Background(), "SELECT count(*) FROM app.orders").Scan(&orders); err != nil {
				t.Fatal(err)
			}
			s.Exec(t, src.ID, fmt.Sprintf(tc.change, rows/100))
			snap2, second, st2 := backupDB(t, p, repo, src, &snap)
			frac := float64(st2.StoredBytes) / float64(st1.StoredBytes)
			t.Logf("%s: 1%% of %d rows changed: second backup stored %d bytes of the first's %d (%.1f%%); read %d of %d bytes; %d tables unchanged, %d changed",
				tc.name, rows, st2.StoredBytes, st1.StoredBytes, 100*frac, second.BytesRead, first.BytesRead, second.Unchanged, second.Changed)
			if second.Unchanged == 0 || second.Changed == 0 {
				t.Errorf("unchanged %d, changed %d tables", second.Unchanged, second.Changed)
			}
			if tc.limit > 0 && frac > tc.limit {
				t.Errorf("stored %.1f%% of a full backup, more than %.0f%%", 100*frac, 100*tc.limit)
			}
			id := uniqueName("incr-copy")
			if _, err := restoreDB(t, p, snap2, src, id, nil); err != nil {
				t.Fatal(err)
			}
			sameDatabase(t, s, src.ID, s, id)
		})
	}
}

// A database keeps the chunk sizes of its first backup, whatever the
// plugin's default becomes; an unchanged database then stores nothing.
func TestChunkSizesKept(t *testing.T) {
	s := server(t)
	src := newDB(t, s, "pg", uniqueName("chunks"), 5000)
	repo := memRepo(t)
	p := newPlugin(t)
	p.ChunkSize = chunker.Params{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}
	snap, _, _ := backupDB(t, p, repo, src, nil)
	p2 := newPlugin(t)
	p2.ChunkSize = chunker.Params{Min: 64 << 10, Avg: 256 << 10, Max: 1 << 20}
	snap2, _, st := backupDB(t, p2, repo, src, &snap)
	if st.NewBlobs != 0 || snap2.Root != snap.Root {
		t.Fatalf("second backup with another default stored %d blobs (root changed: %v)", st.NewBlobs, snap2.Root != snap.Root)
	}
	m := manifestOf(t, snap2)
	if m.ChunkSize != p.ChunkSize {
		t.Fatalf("recorded chunk sizes %+v, want the first backup's %+v", m.ChunkSize, p.ChunkSize)
	}
	// A new database gets the new default.
	src2 := newDB(t, s, "pg", uniqueName("chunks"), 100)
	snap3, _, _ := backupDB(t, p2, repo, src2, nil)
	if m := manifestOf(t, snap3); m.ChunkSize != p2.ChunkSize {
		t.Fatalf("new database recorded %+v, want %+v", m.ChunkSize, p2.ChunkSize)
	}
}

// Daily backups, each after changes anywhere in the tables, build row
// delta layers up to the limit and then store the table whole again;
// every day restores exactly as the database was.
func TestDailyDeltas(t *testing.T) {
	s := server(t)
	src := newDB(t, s, "pg", uniqueName("daily"), 20000)
	p := newPlugin(t)
	repo := memRepo(t)
	var parent *resource.Snapshot
	type day struct {
		snap    resource.Snapshot
		content []string
		layers  int
	}
	var days []day
	rebased := false
	for d := 1; d <= 11; d++ {
		if d > 1 {
			s.Exec(t, src.ID, fmt.Sprintf(`UPDATE app.orders SET amount = amount + 1 WHERE id %% 97 = %d;
				DELETE FROM app.orders WHERE id %% 331 = %d;
				INSERT INTO app.orders (customer_id, amount, note) SELECT 1 + i, i, 'day %d' FROM generate_series(1, 50) i;
				UPDATE app.customers SET name = name || '.' WHERE id %% 89 = %d;`, d, d, d, d))
		}
		snap, _, _ := backupDB(t, p, repo, src, parent)
		parent = &snap
		m := manifestOf(t, snap)
		layers := 0
		for _, tb := range m.Tables {
			if tb.Schema == "app" && tb.Name == "orders" {
				layers = max(len(tb.Layers), 1)
			}
		}
		if layers > 8 {
			t.Fatalf("day %d: %d layers", d, layers)
		}
		if len(days) > 0 && layers < days[len(days)-1].layers {
			rebased = true
		}
		days = append(days, day{snap, contentOf(t, s, src.ID), layers})
	}
	if !rebased {
		t.Errorf("orders never stored whole again: layers %v", func() []int {
			var l []int
			for _, d := range days {
				l = append(l, d.layers)
			}
			return l
		}())
	}
	for _, d := range []int{2, 8, 9, 11} {
		id := uniqueName("daily-copy")
		if _, err := restoreDB(t, p, days[d-1].snap, src, id, nil); err != nil {
			t.Fatalf("restore of day %d (%d layers): %v", d, days[d-1].layers, err)
		}
		if got := strings.Join(contentOf(t, s, id), "\n"); got != strings.Join(days[d-1].content, "\n") {
			t.Errorf("day %d restored differently:\n%s", d, lineDiff(strings.Join(days[d-1].content, "\n"), got))
		}
	}
}
