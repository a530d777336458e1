package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/store/storetest"
)

func open(t testing.TB) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestPragmas(t *testing.T) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		readOnly bool
		want     string
	}{
		{"journal_mode", false, "wal"},
		{"journal_mode", true, "wal"},
		{"synchronous", false, "2"}, // FULL
		{"synchronous", true, "2"},
		{"foreign_keys", false, "1"},
		{"foreign_keys", true, "1"},
		{"busy_timeout", false, strconv.Itoa(sqlite.BusyTimeoutMillis)},
		{"busy_timeout", true, strconv.Itoa(sqlite.BusyTimeoutMillis)},
		{"query_only", true, "1"},
		{"query_only", false, "0"},
	} {
		got, err := s.Pragma(ctx, tc.name, tc.readOnly)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s (readOnly=%v) = %s, want %s", tc.name, tc.readOnly, got, tc.want)
		}
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v %v", files, err)
	}
	want := len(files) // migrations are numbered 1..n without gaps
	path := filepath.Join(t.TempDir(), "meta.db")
	for i := 0; i < 2; i++ {
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.SchemaVersion(context.Background())
		if err != nil || v != want {
			t.Fatalf("schema version = %d, %v; want %d", v, err, want)
		}
		s.Close()
	}
}

func TestReadTxIsReadOnly(t *testing.T) {
	s := open(t)
	defer s.Close()
	err := s.Read(context.Background(), func(tx store.Tx) error {
		return tx.PutTags(context.Background(), "arn:x", map[string]string{"a": "b"})
	})
	if err == nil {
		t.Fatal("write inside Read succeeded")
	}
}

// TestListJobs1M inserts 1,000,000 synthetic jobs and times list/filter
// queries. It is slow (about a minute), so it runs only with COFFER_BENCH_1M=1.
func TestListJobs1M(t *testing.T) {
	if os.Getenv("COFFER_BENCH_1M") != "1" {
		t.Skip("set COFFER_BENCH_1M=1 to run the 1M-row job listing measurement")
	}
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	a := store.Scope{AccountID: "111111111111", Region: "us-east-1"}
	b := store.Scope{AccountID: "222222222222", Region: "us-east-1"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const total, batch = 1_000_000, 20_000
	start := time.Now()
	for off := 0; off < total; off += batch {
		err := s.Write(ctx, func(tx store.Tx) error {
			for i := off; i < off+batch; i++ {
				sc := a
				if i%10 == 9 {
					sc = b
				}
				if err := tx.CreateJob(ctx, storetest.Job(sc, backup.JobBackup, i, base.Add(time.Duration(i)*time.Second))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("insert %d jobs: %v", total, time.Since(start))
	after := base.Add(500_000 * time.Second)
	for _, tc := range []struct {
		name string
		f    store.JobFilter
	}{
		{"no filter", store.JobFilter{}},
		{"state", store.JobFilter{State: "FAILED"}},
		{"vault", store.JobFilter{VaultName: "vault-3"}},
		{"resource arn", store.JobFilter{ResourceArn: fmt.Sprintf("arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-%017x", 42)}},
		{"state+vault+createdAfter", store.JobFilter{State: "COMPLETED", VaultName: "vault-2", CreatedAfter: &after}},
		{"all accounts", store.JobFilter{AllAccounts: true}},
	} {
		tc.f.Kind = backup.JobBackup
		var next string
		st := time.Now()
		pages := 0
		for pages < 10 {
			err := s.Read(ctx, func(tx store.Tx) (err error) {
				_, next, err = tx.ListJobs(ctx, a, tc.f, store.Page{Limit: 100, After: next})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if next == "" {
				break
			}
		}
		t.Logf("ListJobs %-26s %d pages of 100: %v (%v/page)", tc.name, pages, time.Since(st), time.Since(st)/time.Duration(pages))
	}
}

// TestMigrationMovesFileSystems opens a database at schema version 4
// holding a file system (the version-2 file_systems table) and checks that
// migration 5 moves it into resources as type EFS with its path attribute.
func TestMigrationMovesFileSystems(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL DEFAULT 0)`); err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= 4; v++ {
		files, _ := filepath.Glob(filepath.Join("migrations", fmt.Sprintf("%04d_*.sql", v)))
		if len(files) != 1 {
			t.Fatalf("migration %d: %v", v, files)
		}
		body, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(body)); err != nil {
			t.Fatalf("migration %d: %v", v, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_version (version) VALUES (?)`, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO file_systems (account_id, region, id, arn, path, name, tags_json, creation_ms, created_by_restore_job)
		VALUES ('111111111111','us-east-1','fs-0123abcd','arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-0123abcd',
		'/srv/app','app','{"Name":"app"}',1700000000000,'JOB-1')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sc := store.Scope{AccountID: "111111111111", Region: "us-east-1"}
	err = s.Read(ctx, func(tx store.Tx) error {
		r, err := tx.GetResource(ctx, sc, "EFS", "fs-0123abcd")
		if err != nil {
			return err
		}
		if r.Attr("path") != "/srv/app" || r.Name != "app" || r.Tags["Name"] != "app" || r.CreatedByRestoreJob != "JOB-1" ||
			r.CreationDate.UnixMilli() != 1700000000000 || r.Arn != "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-0123abcd" {
			return fmt.Errorf("migrated resource %+v", r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
