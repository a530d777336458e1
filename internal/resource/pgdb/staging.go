package pgdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"coffer/internal/resource"
)

// CleanStaging drops, on every configured server, the databases of
// restores that will not finish: staging databases (StagingName) whose
// job is not live, and databases a restore renamed to their final name
// (its marker comment says so) but never registered, whose job is not
// live. A server that cannot be reached is skipped with a warning (Coffer
// starts without it; its leftovers go at a later start); other failures
// are errors.
func (p *Plugin) CleanStaging(ctx context.Context, req resource.CleanupRequest) error {
	registered := map[string]bool{}
	for _, r := range req.Resources {
		registered[r.Attr(AttrServer)+"\x00"+r.Attr(AttrDatabase)] = true
	}
	live := func(job string) bool { return req.Live != nil && req.Live(job) }
	var errs []error
	for i := range p.Servers {
		s := &p.Servers[i]
		err := s.cleanStaging(ctx, live, registered)
		var ce *ConnError
		if errors.As(err, &ce) {
			p.log().Warn("restore staging cleanup skipped: database server unreachable", "server", s.ID, "err", err)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore staging cleanup on database server %s: %w", s.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) cleanStaging(ctx context.Context, live func(string) bool, registered map[string]bool) error {
	c, err := s.maintenance(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	rows, err := c.Query(ctx, "SELECT datname::text, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database")
	if err != nil {
		return s.queryError(err, "list databases")
	}
	type db struct{ name, comment string }
	dbs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (db, error) {
		var d db
		err := r.Scan(&d.name, &d.comment)
		return d, err
	})
	if err != nil {
		return s.queryError(err, "list databases")
	}
	var errs []error
	for _, d := range dbs {
		drop := false
		if job, ok := strings.CutPrefix(d.name, StagingPrefix); ok && job != "" {
			drop = !live(job)
		} else if job, final, ok := parseMarker(d.comment); ok && final == d.name {
			drop = !live(job) && !registered[s.ID+"\x00"+d.name]
		}
		if !drop {
			continue
		}
		if err := dropDatabase(ctx, c, d.name); err != nil {
			errs = append(errs, s.queryError(err, "drop database "+d.name))
		}
	}
	return errors.Join(errs...)
}
