package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"coffer/internal/clock"
	"coffer/internal/store/sqlite"
	"coffer/internal/store/storetest"
)

// TestJobDayCountsBackfill: migration 9 counts the jobs a database already
// holds, so summaries after an upgrade agree with the job rows.
func TestJobDayCountsBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 11, 22, 15, 30, 0, 0, time.UTC))
	jobs := storetest.GenJobs(t, st, clk, 3000, 4, true)
	st.Close()
	// Back to schema 8 with the jobs in it: no counters, no triggers.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER jobs_day_count_insert", "DROP TRIGGER jobs_day_count_delete", "DROP TRIGGER jobs_day_count_update",
		"DROP TABLE job_day_counts", "DELETE FROM schema_version WHERE version = 9"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	db.Close()
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.CheckSummaries(t, st, jobs, storetest.SummaryQueries(clk.Now()))
}
