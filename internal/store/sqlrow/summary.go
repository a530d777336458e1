package sqlrow

import (
	"strings"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// SummaryWindow is the window of a job summary in stored milliseconds and
// the width of its buckets: the requested bucket, or the whole window when
// that is unset or wider. ok is false for an empty window (no rows).
func SummaryWindow(q store.JobSummaryQuery) (from, to, width int64, ok bool) {
	from, to = Ms(q.From), Ms(q.To)
	width = q.Bucket.Milliseconds()
	if width <= 0 || width >= to-from {
		width = to - from
	}
	return from, to, width, width > 0
}

// SummaryDims are the first four columns of a summary query: account,
// state, resource type and message category, each the column when the
// query groups by it and none (the adapter's empty text literal) when
// not.
func SummaryDims(q store.JobSummaryQuery, none string) []string {
	col := func(group bool, name string) string {
		if group {
			return name
		}
		return none
	}
	return []string{col(q.GroupAccount, "account_id"), col(q.GroupState, "state"), col(q.GroupResourceType, "resource_type"),
		col(q.GroupMessageCategory, "message_category")}
}

// DayGroups is the GROUP BY (and ORDER BY) list of a summary over the
// per-day counters (job_day_counts): the bucket (column 5), then the
// grouped dimensions in the counters' key order. With one-day buckets the
// bucket is the day itself, so the groups follow the primary key and the
// rows are aggregated as the key range is read, without a sort (the
// ungrouped dimensions are constants and order nothing).
func DayGroups(q store.JobSummaryQuery, width int64) string {
	g := []string{"5"}
	if width == store.DayMs {
		g[0] = "day"
	}
	for _, d := range []struct {
		on  bool
		col string
	}{{q.GroupAccount, "account_id"}, {q.GroupState, "state"}, {q.GroupResourceType, "resource_type"}, {q.GroupMessageCategory, "message_category"}} {
		if d.on {
			g = append(g, d.col)
		}
	}
	return strings.Join(g, ", ")
}

// ScanSummaryRow reads a summary row: account, state, resource type,
// message category, bucket and count.
func ScanSummaryRow(sc Scanner) (store.JobSummaryRow, error) {
	var r store.JobSummaryRow
	var state string
	err := sc.Scan(&r.AccountID, &state, &r.ResourceType, &r.MessageCategory, &r.Bucket, &r.Count)
	r.State = backup.JobState(state)
	return r, err
}
