package postgres

import (
	"context"
	"strings"

	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

// SummarizeJobs counts jobs by the requested dimensions and creation-time
// buckets with one grouped query. A window of whole UTC days in buckets of
// whole days (what the API asks) sums the per-day counters of migration 0004
// (job_day_counts, kept by triggers on jobs); any other window counts the
// job rows over the summary indexes (the grouped columns are included in
// them, so the count is an index-only scan once the table has been
// vacuumed).
func (t *txn) SummarizeJobs(ctx context.Context, q store.JobSummaryQuery) ([]store.JobSummaryRow, error) {
	from, to, width, ok := sqlrow.SummaryWindow(q)
	if !ok {
		return []store.JobSummaryRow{}, nil
	}
	if store.WholeDays(from, to, width) {
		return t.summarizeDays(ctx, q, from, to, width)
	}
	var a args
	bucket := "(creation_ms - " + a.add(from) + "::bigint) / " + a.add(width) + "::bigint"
	sel := append(sqlrow.SummaryDims(q, "''::text"), bucket+" AS bucket", "COUNT(*)")
	where := []string{"kind = " + a.add(string(q.Kind))}
	if q.AccountID != "" {
		where = append(where, "account_id = "+a.add(q.AccountID))
	}
	where = append(where, "region = "+a.add(q.Region), "creation_ms >= "+a.add(from), "creation_ms < "+a.add(to))
	for _, f := range []struct{ col, v string }{{"state", string(q.State)}, {"resource_type", q.ResourceType}, {"message_category", q.MessageCategory}} {
		if f.v != "" {
			where = append(where, f.col+" = "+a.add(f.v))
		}
	}
	rows, err := t.tx.Query(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM jobs WHERE `+strings.Join(where, " AND ")+
		` GROUP BY 1, 2, 3, 4, 5 ORDER BY 5, 1, 2, 3, 4`, a...)
	if err != nil {
		return nil, dbErr("summarize jobs", err)
	}
	out, err := collect(rows, sqlrow.ScanSummaryRow)
	return out, dbErr("summarize jobs", err)
}

// summarizeDays answers a summary over whole UTC days from job_day_counts.
func (t *txn) summarizeDays(ctx context.Context, q store.JobSummaryQuery, from, to, width int64) ([]store.JobSummaryRow, error) {
	var a args
	bucket := "(day * " + a.add(store.DayMs) + "::bigint - " + a.add(from) + "::bigint) / " + a.add(width) + "::bigint"
	sel := append(sqlrow.SummaryDims(q, "''::text"), bucket+" AS bucket", "SUM(n)::bigint")
	where := []string{"kind = " + a.add(string(q.Kind)), "region = " + a.add(q.Region),
		"day >= " + a.add(from/store.DayMs) + "::bigint", "day < " + a.add(to/store.DayMs) + "::bigint"}
	if q.AccountID != "" {
		where = append(where, "account_id = "+a.add(q.AccountID))
	}
	for _, f := range []struct{ col, v string }{{"state", string(q.State)}, {"resource_type", q.ResourceType}, {"message_category", q.MessageCategory}} {
		if f.v != "" {
			where = append(where, f.col+" = "+a.add(f.v))
		}
	}
	rows, err := t.tx.Query(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM job_day_counts WHERE `+strings.Join(where, " AND ")+
		` GROUP BY `+sqlrow.DayGroups(q, width)+` HAVING SUM(n) > 0 ORDER BY `+sqlrow.DayGroups(q, width), a...)
	if err != nil {
		return nil, dbErr("summarize jobs", err)
	}
	out, err := collect(rows, sqlrow.ScanSummaryRow)
	return out, dbErr("summarize jobs", err)
}
