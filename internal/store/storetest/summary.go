package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/store"
)

// Summary accounts, states, resource types, message categories and kinds
// of the jobs GenJobs makes.
var (
	SummaryAccounts = []string{"111111111111", "222222222222", "333333333333"}
	sumStates       = []backup.JobState{"CREATED", "RUNNING", "COMPLETED", "FAILED", "ABORTED"}
	sumTypes        = []string{"EFS", "S3", "RDS"}
	sumCats         = []string{"", "SUCCESS", "AccessDenied", "InvalidParameters"}
	sumKinds        = []backup.JobKind{backup.JobBackup, backup.JobCopy, backup.JobRestore}
)

// GenJobs inserts n synthetic jobs of three accounts, kinds, resource
// types and several states and message categories (one in fifty in another
// region), created at random times in the 40 days before clk's time, in
// transactions of 5,000 jobs. With keep it returns them. Tests and
// benchmarks of listing and summaries use it.
func GenJobs(tb testing.TB, st store.Store, clk clock.Clock, n int, seed uint64, keep bool) []*backup.Job {
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
					AccountID: SummaryAccounts[rng.IntN(len(SummaryAccounts))], Region: "us-east-1", State: sumStates[rng.IntN(len(sumStates))],
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

// expectedSummary counts jobs in Go, independently of SQL.
func expectedSummary(jobs []*backup.Job, q store.JobSummaryQuery) []store.JobSummaryRow {
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

// SummaryQueries are summary queries of every kind over the last two
// weeks before now: one-day buckets of one account or all, filtered by
// state, resource type and message category.
func SummaryQueries(now time.Time) []store.JobSummaryQuery {
	day := 24 * time.Hour
	today := now.Truncate(day)
	oneDay := store.JobSummaryQuery{Region: "us-east-1", From: today.Add(-13 * day), To: today.Add(day), Bucket: day,
		GroupAccount: true, GroupState: true, GroupResourceType: true, GroupMessageCategory: true}
	var qs []store.JobSummaryQuery
	for _, k := range sumKinds {
		q := oneDay
		q.Kind = k
		qs = append(qs, q)
		q.AccountID = SummaryAccounts[1]
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

// testSummaries: SummarizeJobs agrees with counts made in Go.
func testSummaries(t *testing.T, st store.Store) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 15, 30, 0, 0, time.UTC))
	jobs := GenJobs(t, st, clk, 6000, 1, true)
	for i, q := range SummaryQueries(clk.Now()) {
		var got []store.JobSummaryRow
		if err := st.Read(ctx, func(tx store.Tx) error {
			var err error
			got, err = tx.SummarizeJobs(ctx, q)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		sortRows(got)
		want := expectedSummary(jobs, q)
		if len(want) == 0 {
			t.Fatalf("query %d: expected nothing; the generator is too sparse", i)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("query %d %+v:\n got  %v\n want %v", i, q, got, want)
		}
	}
}
