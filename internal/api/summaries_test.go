package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	cb "coffer/internal/backup"
	"coffer/internal/store"
)

// windowRow is one summary row's window and count.
type windowRow struct {
	start, end time.Time
	count      int32
}

func (r windowRow) String() string {
	f := "2006-01-02T15:04:05.000"
	return fmt.Sprintf("%s..%s:%d", r.start.Format(f), r.end.Format(f), r.count)
}

// TestSummaryWindows pins the AggregationPeriod rule at several times of
// day: every period is made of whole UTC days ending with the current day.
// ONE_DAY answers one row per day for the 14 days ending today, SEVEN_DAYS
// and FOURTEEN_DAYS one row for the 7 and 14 days ending today. A row's
// StartTime is the midnight that starts its first day, its EndTime the
// midnight that ends its last day, or the request time for the current day.
// So SEVEN_DAYS and FOURTEEN_DAYS count exactly what the last 7 and all 14
// ONE_DAY rows count.
func TestSummaryWindows(t *testing.T) {
	const day = 24 * time.Hour
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	for _, now := range []time.Time{
		base,         // midnight exactly
		base.Add(ms), // just after midnight
		base.Add(6*time.Hour + 30*time.Minute),
		base.Add(12 * time.Hour),
		base.Add(day - ms), // just before the next midnight
	} {
		t.Run(now.Format("15:04:05.000"), func(t *testing.T) {
			e := startOrg(t)
			e.clock.Set(now)
			ctx := context.Background()
			today := now.Truncate(day)

			// Jobs of B on each of the 16 days ending today, at the first
			// and last millisecond of the day and at noon (never after now),
			// and one at now: the first two days fall outside every window.
			var created []time.Time
			for d := 15; d >= 0; d-- {
				start := today.Add(-time.Duration(d) * day)
				for _, at := range []time.Time{start, start.Add(12 * time.Hour), start.Add(day - ms)} {
					if !at.After(now) {
						created = append(created, at)
					}
				}
			}
			created = append(created, now)
			must(t, e.store.Write(ctx, func(tx store.Tx) error {
				for i, at := range created {
					j := &cb.Job{Kind: cb.JobBackup, ID: fmt.Sprintf("W%07d", i), AccountID: acctB.id, Region: region,
						State: "COMPLETED", ResourceType: "EFS", MessageCategory: "SUCCESS", CreationDate: at}
					if err := tx.CreateJob(ctx, j); err != nil {
						return err
					}
				}
				return nil
			}))
			count := func(from, to time.Time) int32 { // jobs created in [from, to)
				n := int32(0)
				for _, at := range created {
					if !at.Before(from) && at.Before(to) {
						n++
					}
				}
				return n
			}

			// want builds the expected rows of a period of n days with
			// buckets of width days.
			want := func(n, width int) []windowRow {
				var out []windowRow
				for first := today.Add(-time.Duration(n-1) * day); first.Before(today.Add(day)); first = first.Add(time.Duration(width) * day) {
					stop := first.Add(time.Duration(width) * day)
					c := count(first, stop)
					if stop.After(now) {
						stop = now
					}
					if c > 0 {
						out = append(out, windowRow{first, stop, c})
					}
				}
				return out
			}
			cases := []struct {
				period types.AggregationPeriod
				want   []windowRow
			}{
				{types.AggregationPeriodOneDay, want(14, 1)},
				{types.AggregationPeriodSevenDays, want(7, 7)},
				{types.AggregationPeriodFourteenDays, want(14, 14)},
			}
			got := map[types.AggregationPeriod][]windowRow{}
			for _, tc := range cases {
				r, err := e.client(acctB).ListBackupJobSummaries(ctx, &backup.ListBackupJobSummariesInput{
					AggregationPeriod: tc.period, State: types.BackupJobStatusAggregateAll,
					ResourceType: aws.String("AGGREGATE_ALL"), MessageCategory: aws.String("AGGREGATE_ALL")})
				must(t, err)
				if aws.ToString(r.AggregationPeriod) != string(tc.period) {
					t.Fatalf("%s: AggregationPeriod %v", tc.period, aws.ToString(r.AggregationPeriod))
				}
				for _, s := range r.BackupJobSummaries {
					got[tc.period] = append(got[tc.period], windowRow{s.StartTime.UTC(), s.EndTime.UTC(), s.Count})
				}
				if fmt.Sprint(got[tc.period]) != fmt.Sprint(tc.want) {
					t.Errorf("%s at %s:\n got  %v\n want %v", tc.period, now.Format(time.RFC3339Nano), got[tc.period], tc.want)
				}
			}
			// The aggregated periods are sums of the daily rows.
			sum := func(rows []windowRow, from time.Time) int32 {
				n := int32(0)
				for _, r := range rows {
					if !r.start.Before(from) {
						n += r.count
					}
				}
				return n
			}
			daily := got[types.AggregationPeriodOneDay]
			if len(daily) != 14 {
				t.Fatalf("%d daily rows, want 14", len(daily))
			}
			for period, first := range map[types.AggregationPeriod]time.Time{
				types.AggregationPeriodSevenDays: today.Add(-6 * day), types.AggregationPeriodFourteenDays: today.Add(-13 * day),
			} {
				if rows := got[period]; len(rows) != 1 || rows[0].count != sum(daily, first) {
					t.Errorf("%s rows %v, want one counting the %d jobs of the daily rows since %s", period, rows, sum(daily, first), first)
				}
			}
		})
	}
}

// TestSummaryWindowsOtherKinds: copy and restore summaries use the same
// windows.
func TestSummaryWindowsOtherKinds(t *testing.T) {
	e := startOrg(t)
	now := time.Date(2026, 11, 22, 6, 30, 0, 0, time.UTC)
	e.clock.Set(now)
	ctx := context.Background()
	must(t, e.store.Write(ctx, func(tx store.Tx) error {
		for i, k := range []cb.JobKind{cb.JobCopy, cb.JobRestore} {
			j := &cb.Job{Kind: k, ID: fmt.Sprintf("K%d", i), AccountID: acctB.id, Region: region, State: "COMPLETED",
				ResourceType: "EFS", MessageCategory: "SUCCESS", CreationDate: now.Add(-6 * 24 * time.Hour)}
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
		}
		return nil
	}))
	wantStart := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	c := e.client(acctB)
	cr, err := c.ListCopyJobSummaries(ctx, &backup.ListCopyJobSummariesInput{AggregationPeriod: types.AggregationPeriodSevenDays})
	must(t, err)
	rr, err := c.ListRestoreJobSummaries(ctx, &backup.ListRestoreJobSummariesInput{AggregationPeriod: types.AggregationPeriodSevenDays})
	must(t, err)
	if len(cr.CopyJobSummaries) != 1 || len(rr.RestoreJobSummaries) != 1 {
		t.Fatalf("copy rows %d, restore rows %d", len(cr.CopyJobSummaries), len(rr.RestoreJobSummaries))
	}
	for name, s := range map[string][2]*time.Time{
		"copy":    {cr.CopyJobSummaries[0].StartTime, cr.CopyJobSummaries[0].EndTime},
		"restore": {rr.RestoreJobSummaries[0].StartTime, rr.RestoreJobSummaries[0].EndTime},
	} {
		if !s[0].Equal(wantStart) || !s[1].Equal(now) {
			t.Errorf("%s: %v .. %v, want %v .. %v", name, s[0], s[1], wantStart, now)
		}
	}
}
