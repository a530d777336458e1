package store

import (
	"time"

	"coffer/internal/backup"
)

// JobSummaryQuery asks SummarizeJobs for job counts of one kind and region,
// grouped by the dimensions whose Group* flag is set (a dimension that is not
// grouped is summed over, AWS AGGREGATE_ALL) and by creation-time bucket.
// Every non-empty filter is AND-combined.
type JobSummaryQuery struct {
	Kind      backup.JobKind
	Region    string
	AccountID string // "" = every account (organization management)

	State           backup.JobState // "" = any
	ResourceType    string          // "" = any
	MessageCategory string          // "" = any

	GroupAccount         bool
	GroupState           bool
	GroupResourceType    bool
	GroupMessageCategory bool

	From   time.Time     // creation time, inclusive
	To     time.Time     // creation time, exclusive
	Bucket time.Duration // bucket width from From; <= 0 or >= To-From: one bucket
}

// JobSummaryRow is one group's count. Dimensions that are not grouped are
// empty; Bucket is the bucket index from From.
type JobSummaryRow struct {
	AccountID       string
	State           backup.JobState
	ResourceType    string
	MessageCategory string
	Bucket          int64
	Count           int64
}

// DayMs is one UTC day in milliseconds: adapters count jobs per creation
// day (creation_ms / DayMs) for the summaries.
const DayMs = int64(24 * time.Hour / time.Millisecond)

// WholeDays reports whether a summary window [from, to) in Unix
// milliseconds, cut in buckets of width, is made of whole UTC days, so
// per-day counts answer it exactly.
func WholeDays(from, to, width int64) bool {
	return from >= 0 && from%DayMs == 0 && to%DayMs == 0 && to > from && width > 0 && width%DayMs == 0
}
