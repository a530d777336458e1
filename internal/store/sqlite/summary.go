package sqlite

import (
	"context"
	"strings"

	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

// SummarizeJobs counts jobs by the requested dimensions and creation-time
// buckets with one grouped query. A window of whole UTC days in buckets of
// whole days (what the API asks) sums the per-day counters of migration 0009
// (job_day_counts, kept by triggers on jobs); any other window counts the
// job rows over the covering indexes of migration 0004.
func (t *txn) SummarizeJobs(ctx context.Context, q store.JobSummaryQuery) ([]store.JobSummaryRow, error) {
	from, to, width, ok := sqlrow.SummaryWindow(q)
	if !ok {
		return []store.JobSummaryRow{}, nil
	}
	if store.WholeDays(from, to, width) {
		return t.summarizeDays(ctx, q, from, to, width)
	}
	sel := append(sqlrow.SummaryDims(q, "''"), "(creation_ms - ?) / ?", "COUNT(*)")
	args := []any{from, width, string(q.Kind)}
	where := []string{"kind = ?"}
	if q.AccountID != "" {
		where = append(where, "account_id = ?")
		args = append(args, q.AccountID)
	}
	where = append(where, "region = ?", "creation_ms >= ?", "creation_ms < ?")
	args = append(args, q.Region, from, to)
	for _, f := range []struct{ col, v string }{{"state", string(q.State)}, {"resource_type", q.ResourceType}, {"message_category", q.MessageCategory}} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	out, err := queryAll(ctx, t, sqlrow.ScanSummaryRow, `SELECT `+strings.Join(sel, ", ")+` FROM jobs WHERE `+strings.Join(where, " AND ")+
		` GROUP BY 1, 2, 3, 4, 5 ORDER BY 5, 1, 2, 3, 4`, args...)
	return out, dbErr("summarize jobs", err)
}

// summarizeDays answers a summary over whole UTC days from job_day_counts.
func (t *txn) summarizeDays(ctx context.Context, q store.JobSummaryQuery, from, to, width int64) ([]store.JobSummaryRow, error) {
	sel := append(sqlrow.SummaryDims(q, "''"), "(day * ? - ?) / ?", "SUM(n)")
	args := []any{store.DayMs, from, width, string(q.Kind), q.Region, from / store.DayMs, to / store.DayMs}
	where := []string{"kind = ?", "region = ?", "day >= ?", "day < ?"}
	if q.AccountID != "" {
		where = append(where, "account_id = ?")
		args = append(args, q.AccountID)
	}
	for _, f := range []struct{ col, v string }{{"state", string(q.State)}, {"resource_type", q.ResourceType}, {"message_category", q.MessageCategory}} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	out, err := queryAll(ctx, t, sqlrow.ScanSummaryRow, `SELECT `+strings.Join(sel, ", ")+` FROM job_day_counts WHERE `+strings.Join(where, " AND ")+
		` GROUP BY `+sqlrow.DayGroups(q, width)+` HAVING SUM(n) > 0 ORDER BY `+sqlrow.DayGroups(q, width), args...)
	return out, dbErr("summarize jobs", err)
}
