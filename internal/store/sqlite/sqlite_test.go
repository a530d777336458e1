package sqlite_test

import (
	"context"
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
