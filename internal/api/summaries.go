package api

import (
	"context"
	"strconv"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// Aggregation periods of the job summaries.
const (
	periodOneDay       = "ONE_DAY"
	periodSevenDays    = "SEVEN_DAYS"
	periodFourteenDays = "FOURTEEN_DAYS"
	maxSummaryResults  = 500
)

// JobSummariesInput is the validated input of the three *JobSummaries
// operations (restores have no MessageCategory).
type JobSummariesInput struct {
	AccountId         *string
	State             *string
	ResourceType      *string
	MessageCategory   *string
	AggregationPeriod *string
	MaxResults        *int64
	NextToken         *string
}

// JobSummaryOutput is the wire Backup/Copy/RestoreJobSummary.
type JobSummaryOutput struct {
	Region          string     `json:",omitempty"`
	AccountId       string     `json:",omitempty"`
	State           string     `json:",omitempty"`
	ResourceType    string     `json:",omitempty"`
	MessageCategory string     `json:",omitempty"`
	Count           int64      `json:"Count"`
	StartTime       *Timestamp `json:",omitempty"`
	EndTime         *Timestamp `json:",omitempty"`
}

// ListBackupJobSummariesOutput is ListBackupJobSummaries' output.
type ListBackupJobSummariesOutput struct {
	BackupJobSummaries []JobSummaryOutput
	AggregationPeriod  string
	NextToken          *string `json:",omitempty"`
}

// ListCopyJobSummariesOutput is ListCopyJobSummaries' output.
type ListCopyJobSummariesOutput struct {
	CopyJobSummaries  []JobSummaryOutput
	AggregationPeriod string
	NextToken         *string `json:",omitempty"`
}

// ListRestoreJobSummariesOutput is ListRestoreJobSummaries' output.
type ListRestoreJobSummariesOutput struct {
	RestoreJobSummaries []JobSummaryOutput
	AggregationPeriod   string
	NextToken           *string `json:",omitempty"`
}

// dimension turns a summary dimension value into (filter, group): omitted
// or ANY groups by the dimension, AGGREGATE_ALL sums over it, a concrete
// value filters (and is echoed).
func dimension(p *string) (filter string, group bool) {
	if p == nil || *p == "ANY" || *p == "*" {
		return "", true
	}
	if *p == "AGGREGATE_ALL" {
		return "", false
	}
	return *p, true
}

// summaryWindow returns the creation-time window [from, to) and bucket width
// of a period at now. Every period is made of whole UTC days ending with the
// current (partial) day: ONE_DAY is one bucket per day over the last 14
// days, SEVEN_DAYS and FOURTEEN_DAYS one bucket over the last 7 or 14 days.
// So SEVEN_DAYS counts exactly what the last 7 ONE_DAY rows count, and
// FOURTEEN_DAYS what all 14 count.
func summaryWindow(period string, now time.Time) (from, to time.Time, bucket time.Duration) {
	const day = 24 * time.Hour
	days, bucket := 14, day
	switch period {
	case periodSevenDays:
		days, bucket = 7, 0
	case periodFourteenDays:
		days, bucket = 14, 0
	}
	today := now.UTC().Truncate(day)
	return today.Add(-time.Duration(days-1) * day), today.Add(day), bucket
}

// summaryCursor is the position in a summary listing: the window start (so
// every page of one listing uses the same window) and the row offset.
func summaryCursor(fromMs int64, offset int) string {
	return strconv.FormatInt(fromMs, 10) + ":" + strconv.Itoa(offset)
}

func parseSummaryCursor(c string) (fromMs int64, offset int, ok bool) {
	a, b, found := strings.Cut(c, ":")
	if !found {
		return 0, 0, false
	}
	f, err1 := strconv.ParseInt(a, 10, 64)
	o, err2 := strconv.Atoi(b)
	return f, o, err1 == nil && err2 == nil && o >= 0
}

func (s *Server) jobSummaries(ctx context.Context, id Identity, op string, kind backup.JobKind, in *JobSummariesInput) ([]JobSummaryOutput, string, *string, error) {
	period := periodOneDay
	if in.AggregationPeriod != nil {
		period = *in.AggregationPeriod
	}
	if in.MaxResults != nil && *in.MaxResults > maxSummaryResults {
		return nil, "", nil, invalidParam("MaxResults", "MaxResults must be between 1 and %d", maxSummaryResults)
	}
	q := service.JobSummaryQuery{Kind: kind, Region: id.Region}
	var state string
	state, q.GroupState = dimension(in.State)
	q.State = backup.JobState(state)
	q.ResourceType, q.GroupResourceType = dimension(in.ResourceType)
	if kind != backup.JobRestore {
		q.MessageCategory, q.GroupMessageCategory = dimension(in.MessageCategory)
	}
	// Accounts: a member account only ever counts its own jobs.
	acct, groupAcct := dimension(in.AccountId)
	q.GroupAccount = groupAcct
	out := []JobSummaryOutput{}
	switch {
	case acct == "" && id.Management:
		q.AccountID = "" // every account
	case acct == "" || acct == id.AccountID:
		q.AccountID = id.AccountID
	case id.Management:
		q.AccountID = acct
	default:
		return out, period, nil, nil // another account: nothing
	}
	bound := struct {
		Q      service.JobSummaryQuery
		Period string
	}{q, period}
	bound.Q.From, bound.Q.To = time.Time{}, time.Time{}
	pg, err := s.pager.page(id.AccountID, op, bound, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, "", nil, err
	}
	// One reading of the clock for the window and the rows' end times.
	now := s.deps.Clock.Now().UTC().Truncate(time.Millisecond)
	q.From, q.To, q.Bucket = summaryWindow(period, now)
	offset := 0
	if pg.After != "" {
		fromMs, off, ok := parseSummaryCursor(pg.After)
		if !ok {
			return nil, "", nil, invalidParam("NextToken", "The NextToken is invalid or does not belong to this request")
		}
		// Keep the first page's window so pages neither overlap nor skip.
		span := q.To.Sub(q.From)
		q.From = time.UnixMilli(fromMs).UTC()
		q.To = q.From.Add(span)
		offset = off
	}
	var rows []service.JobSummaryRow
	if rows, err = s.svc.SummarizeJobs(ctx, id.caller(), q); err != nil {
		return nil, "", nil, err
	}
	width := q.Bucket
	if width <= 0 {
		width = q.To.Sub(q.From)
	}
	end := offset + pg.Limit
	if end > len(rows) {
		end = len(rows)
	}
	if offset > len(rows) {
		offset = len(rows)
	}
	for _, r := range rows[offset:end] {
		// StartTime is the midnight that starts the row's first day,
		// EndTime the midnight that ends its last day, or now when that is
		// the current day.
		start := q.From.Add(time.Duration(r.Bucket) * width)
		stop := start.Add(width)
		if stop.After(now) {
			stop = now
		}
		out = append(out, JobSummaryOutput{Region: id.Region, AccountId: r.AccountID, State: string(r.State), ResourceType: r.ResourceType,
			MessageCategory: r.MessageCategory, Count: r.Count, StartTime: ts(start), EndTime: ts(stop)})
	}
	var next *string
	if end < len(rows) {
		next = s.pager.issue(id.AccountID, op, bound, summaryCursor(q.From.UnixMilli(), end))
	}
	return out, period, next, nil
}

func (s *Server) listBackupJobSummaries(ctx context.Context, id Identity, in *JobSummariesInput) (*ListBackupJobSummariesOutput, error) {
	rows, period, next, err := s.jobSummaries(ctx, id, "ListBackupJobSummaries", backup.JobBackup, in)
	if err != nil {
		return nil, err
	}
	return &ListBackupJobSummariesOutput{BackupJobSummaries: rows, AggregationPeriod: period, NextToken: next}, nil
}

func (s *Server) listCopyJobSummaries(ctx context.Context, id Identity, in *JobSummariesInput) (*ListCopyJobSummariesOutput, error) {
	rows, period, next, err := s.jobSummaries(ctx, id, "ListCopyJobSummaries", backup.JobCopy, in)
	if err != nil {
		return nil, err
	}
	return &ListCopyJobSummariesOutput{CopyJobSummaries: rows, AggregationPeriod: period, NextToken: next}, nil
}

func (s *Server) listRestoreJobSummaries(ctx context.Context, id Identity, in *JobSummariesInput) (*ListRestoreJobSummariesOutput, error) {
	rows, period, next, err := s.jobSummaries(ctx, id, "ListRestoreJobSummaries", backup.JobRestore, in)
	if err != nil {
		return nil, err
	}
	return &ListRestoreJobSummariesOutput{RestoreJobSummaries: rows, AggregationPeriod: period, NextToken: next}, nil
}
