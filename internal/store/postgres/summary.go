package postgres

import (
	"context"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// SummarizeJobs counts jobs by the requested dimensions and creation-time
// buckets with one grouped query over the summary indexes (the grouped
// columns are included in them, so the count is an index-only scan once
// the table has been vacuumed).
func (t *txn) SummarizeJobs(ctx context.Context, q store.JobSummaryQuery) ([]store.JobSummaryRow, error) {
	from, to := ms(q.From), ms(q.To)
	width := q.Bucket.Milliseconds()
	if width <= 0 || width >= to-from {
		width = to - from
	}
	if width <= 0 {
		return []store.JobSummaryRow{}, nil
	}
	col := func(group bool, name string) string {
		if group {
			return name
		}
		return "''::text"
	}
	var a args
	bucket := "(creation_ms - " + a.add(from) + "::bigint) / " + a.add(width) + "::bigint"
	sel := []string{col(q.GroupAccount, "account_id"), col(q.GroupState, "state"), col(q.GroupResourceType, "resource_type"),
		col(q.GroupMessageCategory, "message_category"), bucket + " AS bucket", "COUNT(*)"}
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
	out, err := collect(rows, func(sc scanner) (store.JobSummaryRow, error) {
		var r store.JobSummaryRow
		var state string
		err := sc.Scan(&r.AccountID, &state, &r.ResourceType, &r.MessageCategory, &r.Bucket, &r.Count)
		r.State = backup.JobState(state)
		return r, err
	})
	return out, dbErr("summarize jobs", err)
}
