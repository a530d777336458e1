package pgdb_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/crypto"
	"coffer/internal/resource"
	"coffer/internal/resource/pgdb"
)

// largeRows is the row count of the large round trip: COFFER_PG_ROWS, or
// 1,000,000.
func largeRows(t testing.TB) int {
	if v := os.Getenv("COFFER_PG_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("COFFER_PG_ROWS=%q", v)
		}
		return n
	}
	if testing.Short() {
		return 50000
	}
	return 1000000
}

func memRepo(t testing.TB) *repository.Repository {
	t.Helper()
	r, err := repository.Create(context.Background(), blobtest.NewMem(clock.Real{}), crypto.RandomKey(), repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

type nopProgress struct{}

func (nopProgress) Update(int64, int64) {}

// backupErr backs r up into a new memory repository.
func backupErr(t testing.TB, p *pgdb.Plugin, r *backup.Resource) (resource.BackupResult, repository.WriterStats, error) {
	t.Helper()
	return backupInto(p, memRepo(t), r, nil)
}

func backupInto(p *pgdb.Plugin, repo *repository.Repository, r *backup.Resource, parent *resource.Snapshot) (resource.BackupResult, repository.WriterStats, error) {
	return backupWith(p, repo, r, parent, nopProgress{})
}

func backupWith(p *pgdb.Plugin, repo *repository.Repository, r *backup.Resource, parent *resource.Snapshot, pr resource.Progress) (resource.BackupResult, repository.WriterStats, error) {
	var res resource.BackupResult
	var stats repository.WriterStats
	var session *repository.Writer
	err := repo.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
		var err error
		session = w
		res, err = p.Backup(ctx, resource.BackupRequest{Resource: r, Session: w, Parent: parent, Progress: pr})
		return err
	})
	if session != nil {
		stats = session.Stats() // after the session's last packs
	}
	return res, stats, err
}

// backupDB backs r up into repo (parent may be nil).
func backupDB(t testing.TB, p *pgdb.Plugin, repo *repository.Repository, r *backup.Resource, parent *resource.Snapshot) (resource.Snapshot, resource.BackupResult, repository.WriterStats) {
	t.Helper()
	res, stats, err := backupInto(p, repo, r, parent)
	if err != nil {
		t.Fatalf("backup of %s: %v", r.ID, err)
	}
	return resource.Snapshot{Loader: repo, Root: res.Root}, res, stats
}

// restoreDB restores snap as a new database id and finishes it.
func restoreDB(t testing.TB, p *pgdb.Plugin, snap resource.Snapshot, src *backup.Resource, id string, settings map[string]string) (resource.RestoreResult, error) {
	t.Helper()
	return restoreWith(t, p, snap, src, id, settings, nopProgress{})
}

func restoreWith(t testing.TB, p *pgdb.Plugin, snap resource.Snapshot, src *backup.Resource, id string, settings map[string]string, pr resource.Progress) (resource.RestoreResult, error) {
	t.Helper()
	spec := &backup.RestoreSpec{Target: backup.RestoreTarget{New: true, ID: id}, Settings: map[string]string{pgdb.KeyEngine: pgdb.EnginePostgres}}
	for k, v := range settings {
		spec.Settings[k] = v
	}
	sc := resource.Scope{AccountID: src.AccountID, Region: src.Region}
	rp := &backup.RecoveryPoint{Arn: backup.RecoveryPointArn(sc.Region, sc.AccountID, "rp"), ResourceArn: src.Arn, ResourceType: pgdb.ResourceType,
		Tags: map[string]string{"team": "db"}}
	res, err := p.Restore(context.Background(), resource.RestoreRequest{JobID: "JOB-" + id, Scope: sc, Spec: spec, RecoveryPoint: rp,
		Snapshot: snap, Created: time.Now(), Progress: pr, CopySourceTags: true})
	if err == nil && res.Finish != nil {
		err = res.Finish(context.Background())
	}
	return res, err
}

// TestLargeRoundTrip backs up and restores a database of the rich schema
// with largeRows rows and compares it table by table.
func TestLargeRoundTrip(t *testing.T) {
	s := server(t)
	rows := largeRows(t)
	p := newPlugin(t)
	start := time.Now()
	src := newDB(t, s, "pg", uniqueName("large"), rows)
	t.Logf("%d rows generated in %v", rows, time.Since(start))
	repo := memRepo(t)
	start = time.Now()
	snap, res, stats := backupDB(t, p, repo, src, nil)
	t.Logf("backup: %d tables, %d bytes read, %d stored, %d blobs in %v", res.Items, res.BytesRead, stats.StoredBytes, stats.NewBlobs, time.Since(start))
	id := uniqueName("large-copy")
	start = time.Now()
	rres, err := restoreDB(t, p, snap, src, id, nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	t.Logf("restore in %v: %+v", time.Since(start), rres.Details)
	sameDatabase(t, s, src.ID, s, id)
	// Primary keys and unique constraints of customers, orders, the two
	// partitions, cache, empty and the quoted table, and orders' index.
	n := builtWithTables(t, rres)
	if n < 8 {
		t.Errorf("%d post-data entries built with their table, want every table's keys and indexes (8 or more)", n)
	}
	// In a UTF8 database Coffer runs them itself, from pg_restore's
	// script (sameDatabase above compares the schema they built).
	if m := detailCount(t, rres, "post_data_by_session"); m != n {
		t.Errorf("%d of %d post-data entries built with their table run over Coffer's sessions, want all", m, n)
	}
}
