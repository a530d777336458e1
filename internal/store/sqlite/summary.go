package sqlite

import (
	"context"
	"strings"

	"coffer/internal/store"
)

// SummarizeJobs counts jobs by the requested dimensions and creation-time
// buckets with one grouped query. Migration 0004 adds covering indexes
// (kind, [account,] region, creation, state, resource type, message
// category), so the query reads only the index range of the window.
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
		return "''"
	}
	sel := []string{col(q.GroupAccount, "account_id"), col(q.GroupState, "state"), col(q.GroupResourceType, "resource_type"),
		col(q.GroupMessageCategory, "message_category"), "(creation_ms - ?) / ?", "COUNT(*)"}
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
	rows, err := t.tx.QueryContext(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM jobs WHERE `+strings.Join(where, " AND ")+
		` GROUP BY 1, 2, 3, 4, 5 ORDER BY 5, 1, 2, 3, 4`, args...)
	if err != nil {
		return nil, dbErr("summarize jobs", err)
	}
	defer rows.Close()
	out := []store.JobSummaryRow{}
	for rows.Next() {
		var r store.JobSummaryRow
		if err := rows.Scan(&r.AccountID, &r.State, &r.ResourceType, &r.MessageCategory, &r.Bucket, &r.Count); err != nil {
			return nil, dbErr("summarize jobs", err)
		}
		out = append(out, r)
	}
	return out, dbErr("summarize jobs", rows.Err())
}
