package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
)

var (
	sumAccounts = []string{"111111111111", "222222222222", "333333333333"}
	sumStates   = []backup.JobState{"CREATED", "RUNNING", "COMPLETED", "FAILED", "ABORTED"}
	sumTypes    = []string{"EFS", "S3", "RDS"}
	sumCats     = []string{"", "SUCCESS", "AccessDenied", "InvalidParameters"}
	sumKinds    = []backup.JobKind{backup.JobBackup, backup.JobCopy, backup.JobRestore}
)

// genJobs inserts n synthetic jobs created at random times in the 40 days
// before clk's time (in batches of one transaction each) and returns them.
func genJobs(tb testing.TB, st store.Store, clk clock.Clock, n int, seed uint64, keep bool) []*backup.Job {
	tb.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	now := clk.Now()
	var kept []*backup.Job
	const batch = 5000
	for done := 0; done < n; done += batch {
		err := st.Write(ctx, func(tx store.Tx) error {
			for i := done; i < n && i < done+batch; i++ {
				j := &backup.Job{Kind: sumKinds[rng.IntN(len(sumKinds))], ID: fmt.Sprintf("J%09d", i),
					AccountID: sumAccounts[rng.IntN(len(sumAccounts))], Region: "us-east-1", State: sumStates[rng.IntN(len(sumStates))],
					ResourceType: sumTypes[rng.IntN(len(sumTypes))], MessageCategory: sumCats[rng.IntN(len(sumCats))],
					CreationDate: now.Add(-time.Duration(rng.Int64N(int64(40 * 24 * time.Hour)))).Truncate(time.Millisecond)}
				if rng.IntN(50) == 0 {
					j.Region = "eu-west-1"
				}
				if err := tx.CreateJob(ctx, j); err != nil {
					return err
				}
				if keep {
					kept = append(kept, j)
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return kept
}

// expected counts jobs in Go, independently of SQL.
func expected(jobs []*backup.Job, q store.JobSummaryQuery) []store.JobSummaryRow {
	width := q.Bucket
	if width <= 0 || width >= q.To.Sub(q.From) {
		width = q.To.Sub(q.From)
	}
	counts := map[store.JobSummaryRow]int64{}
	for _, j := range jobs {
		if j.Kind != q.Kind || j.Region != q.Region || (q.AccountID != "" && j.AccountID != q.AccountID) ||
			j.CreationDate.Before(q.From) || !j.CreationDate.Before(q.To) ||
			(q.State != "" && j.State != q.State) || (q.ResourceType != "" && j.ResourceType != q.ResourceType) ||
			(q.MessageCategory != "" && j.MessageCategory != q.MessageCategory) {
			continue
		}
		var k store.JobSummaryRow
		if q.GroupAccount {
			k.AccountID = j.AccountID
		}
		if q.GroupState {
			k.State = j.State
		}
		if q.GroupResourceType {
			k.ResourceType = j.ResourceType
		}
		if q.GroupMessageCategory {
			k.MessageCategory = j.MessageCategory
		}
		k.Bucket = int64(j.CreationDate.Sub(q.From) / width)
		counts[k]++
	}
	out := []store.JobSummaryRow{}
	for k, n := range counts {
		k.Count = n
		out = append(out, k)
	}
	sortRows(out)
	return out
}

func sortRows(rs []store.JobSummaryRow) {
	sort.Slice(rs, func(a, b int) bool {
		x, y := rs[a], rs[b]
		return fmt.Sprint(x.Bucket+1000, x.AccountID, x.State, x.ResourceType, x.MessageCategory) <
			fmt.Sprint(y.Bucket+1000, y.AccountID, y.State, y.ResourceType, y.MessageCategory)
	})
}

func summaryQueries(now time.Time) []store.JobSummaryQuery {
	day := 24 * time.Hour
	today := now.Truncate(day)
	oneDay := store.JobSummaryQuery{Region: "us-east-1", From: today.Add(-13 * day), To: today.Add(day), Bucket: day,
		GroupAccount: true, GroupState: true, GroupResourceType: true, GroupMessageCategory: true}
	var qs []store.JobSummaryQuery
	for _, k := range sumKinds {
		q := oneDay
		q.Kind = k
		qs = append(qs, q)
		q.AccountID = sumAccounts[1]
		qs = append(qs, q)
		q.State, q.GroupMessageCategory = "FAILED", false
		qs = append(qs, q)
		q = oneDay
		q.Kind, q.From, q.To, q.Bucket = k, now.Add(-7*day), now.Add(time.Millisecond), 0
		q.GroupAccount, q.ResourceType = false, "EFS"
		qs = append(qs, q)
		q.From, q.GroupState, q.GroupResourceType, q.MessageCategory = now.Add(-14*day), false, false, "SUCCESS"
		qs = append(qs, q)
	}
	return qs
}

func TestSummarizeJobsMatchesIndependentCounts(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 15, 30, 0, 0, time.UTC))
	st := open(t)
	jobs := genJobs(t, st, clk, 6000, 1, true)
	ctx := context.Background()
	for i, q := range summaryQueries(clk.Now()) {
		var got []store.JobSummaryRow
		if err := st.Read(ctx, func(tx store.Tx) error {
			var err error
			got, err = tx.SummarizeJobs(ctx, q)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		sortRows(got)
		want := expected(jobs, q)
		if len(want) == 0 {
			t.Fatalf("query %d: expected nothing; the generator is too sparse", i)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("query %d %+v:\n got  %v\n want %v", i, q, got, want)
		}
	}
}

// BenchmarkJobQueriesMillion loads a million synthetic job rows once and
// measures list, filtered list and summary queries on them. Run with
//
//	go test ./internal/store/sqlite -run '^$' -bench JobQueriesMillion -benchtime 20x
func BenchmarkJobQueriesMillion(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	clk := clock.NewFake(time.Date(2026, 11, 22, 15, 30, 0, 0, time.UTC))
	start := time.Now()
	genJobs(b, st, clk, 1_000_000, 2, false)
	b.Logf("inserted 1,000,000 jobs in %v", time.Since(start))
	sc := store.Scope{AccountID: sumAccounts[0], Region: "us-east-1"}
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
