package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/store"
	"coffer/internal/store/postgres"
	"coffer/internal/store/storetest"
	"coffer/internal/testutil/pgtest"
)

// TestJobDayCountsBackfill: migration 4 counts the jobs a database already
// holds, so summaries after an upgrade agree with the job rows.
func TestJobDayCountsBackfill(t *testing.T) {
	dsn := pgtest.Shared(t).SchemaDSN(t)
	st, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 11, 22, 15, 30, 0, 0, time.UTC))
	jobs := storetest.GenJobs(t, st, clk, 3000, 4, true)
	st.Close()
	// Back to schema 3 with the jobs in it: no counters, no triggers (and
	// none of the later migrations, which apply after 4 again).
	c := connect(t, dsn)
	for _, q := range []string{"DROP TABLE job_day_counts", "DROP FUNCTION jobs_day_count() CASCADE",
		"DROP TABLE console_sessions", "DELETE FROM schema_version WHERE version >= 4"} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	st = open1(t, dsn)
	storetest.CheckSummaries(t, st, jobs, storetest.SummaryQueries(clk.Now()))
}

// TestJobDayCountsConcurrentNodes: nodes claiming and finishing jobs of one
// day, account and kind at once (every change moves the same counter
// rows) leave the counters equal to the job rows.
func TestJobDayCountsConcurrentNodes(t *testing.T) {
	dsn := pgtest.Shared(t).SchemaDSN(t)
	s := open1(t, dsn)
	day := 24 * time.Hour
	now := time.Now().UTC()
	created := now.Truncate(day)
	const n = 400
	if err := s.Write(ctx, func(tx store.Tx) error {
		for i := range n {
			j := storetest.Job(scope, backup.JobRestore, i, created.Add(time.Duration(i)*time.Millisecond))
			j.State = backup.JobCreated
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const nodes = 4
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for w := range nodes {
		st := open1(t, dsn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				var j *backup.Job
				err := st.Write(ctx, func(tx store.Tx) error {
					var err error
					j, err = tx.ClaimJob(ctx, store.Claim{Kinds: []backup.JobKind{backup.JobRestore}, Owner: fmt.Sprint("node-", w),
						Now: time.Now(), LeaseExpiry: time.Now().Add(time.Minute)})
					return err
				})
				if err != nil || j == nil {
					errs <- err
					return
				}
				err = st.Write(ctx, func(tx store.Tx) error {
					c := *j
					c.State, c.MessageCategory = backup.JobCompleted, "SUCCESS"
					if k%3 == 0 {
						c.State, c.MessageCategory = backup.JobFailed, "AccessDenied"
					}
					return tx.UpdateJob(ctx, &c, j.LeaseGeneration)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var all []*backup.Job
	if err := s.Read(ctx, func(tx store.Tx) error {
		for i := range n {
			j, err := tx.GetJobByID(ctx, storetest.Job(scope, backup.JobRestore, i, created).ID)
			if err != nil {
				return err
			}
			all = append(all, j)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	storetest.CheckSummaries(t, s, all, []store.JobSummaryQuery{
		{Kind: backup.JobRestore, Region: scope.Region, From: created.Add(-day), To: created.Add(day), Bucket: day,
			GroupAccount: true, GroupState: true, GroupResourceType: true, GroupMessageCategory: true},
		{Kind: backup.JobRestore, Region: scope.Region, AccountID: scope.AccountID, From: created, To: created.Add(day), GroupState: true},
	})
}
