package api

import (
	"context"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// listJobPage serves one page of a job list: it binds the page token to
// the filter and the account parameter, lists through the service (which
// applies the organization view of acct) and converts each job with conv.
func listJobPage[T any](ctx context.Context, s *Server, id Identity, op string, acct *string, f service.JobFilter,
	token *string, maxResults *int64, conv func(*backup.Job) T) ([]T, *string, error) {
	view := id.caller().ResolveOrgView(acct)
	bound := struct {
		F       service.JobFilter
		Account string
		All     bool
	}{f, view.Scope.AccountID, view.All}
	pg, err := s.pager.page(id.AccountID, op, bound, token, maxResults)
	if err != nil {
		return nil, nil, err
	}
	items := []T{}
	js, cursor, err := s.svc.ListJobs(ctx, id.caller(), acct, f, pg)
	if err != nil {
		return nil, nil, err
	}
	for _, j := range js {
		items = append(items, conv(j))
	}
	return items, s.pager.issue(id.AccountID, op, bound, cursor), nil
}
