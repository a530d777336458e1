package storetest

import (
	"context"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/store"
)

// BenchJobQueriesMillion loads a million synthetic job rows into st once
// (prepare, if set, runs after loading, e.g. ANALYZE) and measures list,
// filtered list and summary queries on them: the same queries on every
// adapter, so figures compare side by side.
func BenchJobQueriesMillion(b *testing.B, st store.Store, prepare func() error) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 22, 15, 30, 0, 0, time.UTC))
	start := time.Now()
	GenJobs(b, st, clk, 1_000_000, 2, false)
	b.Logf("inserted 1,000,000 jobs in %v", time.Since(start))
	if prepare != nil {
		if err := prepare(); err != nil {
			b.Fatal(err)
		}
	}
	sc := store.Scope{AccountID: SummaryAccounts[0], Region: "us-east-1"}
	after := clk.Now().Add(-20 * 24 * time.Hour)
	day := 24 * time.Hour
	today := clk.Now().Truncate(day)
	ops := []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"ListJobs/page100", func(tx store.Tx) error {
			_, _, err := tx.ListJobs(ctx, sc, store.JobFilter{Kind: backup.JobBackup}, store.Page{Limit: 100})
			return err
		}},
		{"ListJobs/allAccounts/page100", func(tx store.Tx) error {
			_, _, err := tx.ListJobs(ctx, sc, store.JobFilter{Kind: backup.JobCopy, AllAccounts: true}, store.Page{Limit: 100})
			return err
		}},
		{"ListJobs/state+createdAfter/page100", func(tx store.Tx) error {
			_, _, err := tx.ListJobs(ctx, sc, store.JobFilter{Kind: backup.JobBackup, State: "FAILED", CreatedAfter: &after}, store.Page{Limit: 100})
			return err
		}},
		{"ListJobs/deepPage", func(tx store.Tx) error {
			_, next, err := tx.ListJobs(ctx, sc, store.JobFilter{Kind: backup.JobRestore}, store.Page{Limit: 1000})
			if err != nil {
				return err
			}
			_, _, err = tx.ListJobs(ctx, sc, store.JobFilter{Kind: backup.JobRestore}, store.Page{Limit: 1000, After: next})
			return err
		}},
		{"Summarize/ONE_DAY/account", func(tx store.Tx) error {
			_, err := tx.SummarizeJobs(ctx, store.JobSummaryQuery{Kind: backup.JobBackup, Region: "us-east-1", AccountID: sc.AccountID,
				From: today.Add(-13 * day), To: today.Add(day), Bucket: day, GroupState: true, GroupResourceType: true, GroupMessageCategory: true, GroupAccount: true})
			return err
		}},
		{"Summarize/ONE_DAY/allAccounts", func(tx store.Tx) error {
			_, err := tx.SummarizeJobs(ctx, store.JobSummaryQuery{Kind: backup.JobBackup, Region: "us-east-1",
				From: today.Add(-13 * day), To: today.Add(day), Bucket: day, GroupState: true, GroupResourceType: true, GroupMessageCategory: true, GroupAccount: true})
			return err
		}},
		{"Summarize/FOURTEEN_DAYS/allAccounts/state", func(tx store.Tx) error {
			_, err := tx.SummarizeJobs(ctx, store.JobSummaryQuery{Kind: backup.JobCopy, Region: "us-east-1", State: "FAILED",
				From: clk.Now().Add(-14 * day), To: clk.Now(), GroupAccount: true, GroupResourceType: true})
			return err
		}},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			for b.Loop() {
				if err := st.Read(ctx, func(tx store.Tx) error { return op.fn(tx) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
