package pgdb

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"coffer/internal/repository"
	"coffer/internal/resource"
)

// StagingPrefix starts the name of the database a restore loads and
// verifies before renaming it; the job id follows.
const StagingPrefix = "coffer-restore-"

// markerPrefix starts the comment a restore puts on its database: the
// job id and the final name follow. It tells a crashed restore's database
// from everything else.
const markerPrefix = "coffer-restore job="

// StagingName is the temporary name of job jobID's database.
func StagingName(jobID string) string { return StagingPrefix + jobID }

func marker(jobID, final string) string { return markerPrefix + jobID + " name=" + final }

// parseMarker splits a database comment written by marker.
func parseMarker(comment string) (jobID, final string, ok bool) {
	rest, ok := strings.CutPrefix(comment, markerPrefix)
	if !ok {
		return "", "", false
	}
	jobID, final, ok = strings.Cut(rest, " name=")
	return jobID, final, ok && jobID != "" && final != ""
}

// Restore creates the database under StagingName(job), loads the schema,
// rows (verifying each table's row count and checksum against the
// backup's as soon as it is loaded), large objects and sequences, builds
// indexes and constraints, verifies the large objects and sequences and
// returns a result whose Finish renames it to DBInstanceIdentifier. On
// failure or cancellation the staging database is dropped.
func (p *Plugin) Restore(ctx context.Context, req resource.RestoreRequest) (resource.RestoreResult, error) {
	md, err := checkSpec(req.Spec)
	if err != nil {
		return resource.RestoreResult{}, fmt.Errorf("%w: %w", resource.ErrInvalid, err)
	}
	if len(StagingName(req.JobID)) > 63 {
		return resource.RestoreResult{}, fmt.Errorf("%w: job id %q is too long for a database name", resource.ErrInvalid, req.JobID)
	}
	st, err := load(ctx, req.Snapshot.Loader, req.Snapshot.Root)
	if err != nil {
		if errors.Is(err, repository.ErrCorrupt) || errors.Is(err, errNotDatabase) {
			return resource.RestoreResult{}, fmt.Errorf("%w: %w", resource.ErrCorrupt, err)
		}
		return resource.RestoreResult{}, fmt.Errorf("read recovery point %s: %w", req.RecoveryPoint.Arn, err)
	}
	srv, err := p.targetServer(md, st.man)
	if err != nil {
		return resource.RestoreResult{}, caller(fmt.Errorf("%w: %w", resource.ErrInvalid, err), "The restore of recovery point "+req.RecoveryPoint.Arn+" failed")
	}
	r := &restorer{p: p, srv: srv, req: req, st: st, final: md.Identifier, staging: StagingName(req.JobID), prog: newTracker(req.Progress, "v:", "restored and verified")}
	start := time.Now()
	res, err := r.run(ctx)
	if err != nil {
		if derr := r.discard(context.WithoutCancel(ctx)); derr != nil {
			p.log().Warn("restore: staging database not dropped; it is dropped at the next start", "job", req.JobID, "server", srv.ID, "err", derr)
		}
		if ctx.Err() != nil {
			return resource.RestoreResult{}, ctx.Err()
		}
		return resource.RestoreResult{}, caller(err, "The restore of recovery point "+req.RecoveryPoint.Arn+" as database "+md.Identifier+
			" on server "+srv.ID+" failed")
	}
	d, _ := res.Details.(details)
	p.log().Info("database restored", "job", req.JobID, "database", md.Identifier, "server", srv.ID, "tables", res.Items,
		"bytes", res.Bytes, "seconds", time.Since(start).Seconds(), "phase_seconds", d.Seconds)
	return res, nil
}

// restorer is one restore.
type restorer struct {
	p              *Plugin
	srv            *Server
	req            resource.RestoreRequest
	st             *stored
	final, staging string
	prog           *tracker
	major          int
	created        bool
	countOnly      atomic.Int64 // tables verified by row count only
	streamVerified atomic.Int64 // tables verified by their stream (Table.StreamCheck)
	tool           tool         // pg_restore
	post           *postPlan    // the post-data archive and its split
	// probes are the target server's checksum probes (checksumProbes):
	// a table's checksum is compared where they equal the source's.
	probes map[string]string
}

func (r *restorer) run(ctx context.Context) (resource.RestoreResult, error) {
	var res resource.RestoreResult
	man := r.st.man
	maint, err := r.srv.maintenance(ctx)
	if err != nil {
		return res, err
	}
	defer maint.Close(context.WithoutCancel(ctx))
	var version string
	if r.major, version, err = serverVersion(ctx, maint); err != nil {
		return res, r.srv.queryError(err, "read the server version")
	}
	if r.major < man.ServerMajor {
		return res, failed(resource.ErrInvalid, "database server %s runs PostgreSQL %s, older than the backup's PostgreSQL %s; restore to a server of version %d or later",
			r.srv.ID, version, man.ServerVersion, man.ServerMajor)
	}
	pgRestore, err := r.p.findTool(ctx, "pg_restore", max(r.major, man.PgDumpMajor), "restore into server "+r.srv.ID)
	if err != nil {
		return res, err
	}
	if r.p.reserved(r.final) {
		return res, failed(resource.ErrInvalid, "database %s already exists (a configured database); restores never replace a database", r.final)
	}
	var n int
	if err := maint.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE lower(datname) = lower($1)", r.final).Scan(&n); err != nil {
		return res, r.srv.queryError(err, "list databases")
	}
	if n > 0 {
		return res, failed(resource.ErrInvalid, "database %s already exists on server %s; restores never replace a database", r.final, r.srv.ID)
	}
	if len(man.Roles) > 0 {
		rows, err := maint.Query(ctx, "SELECT x FROM unnest($1::text[]) x WHERE x NOT IN (SELECT rolname FROM pg_roles) ORDER BY x", man.Roles)
		if err != nil {
			return res, r.srv.queryError(err, "list roles")
		}
		missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return res, r.srv.queryError(err, "list roles")
		}
		if len(missing) > 0 {
			return res, failed(resource.ErrInvalid, "the backup grants privileges to roles that do not exist on server %s: %s; create them there and restore again (objects are owned by the restoring user %s, grants are kept)",
				r.srv.ID, strings.Join(missing, ", "), r.srv.User)
		}
	}

	// Expected work: schema, rows, large objects, then the verification
	// reading every table again.
	r.prog.expect("pre", man.PreDataSize)
	r.prog.expect("post", man.PostDataSize)
	r.prog.expect("lo", man.LargeObjects.Bytes)
	for _, t := range man.Tables {
		r.prog.expect("t:"+t.qualified(), t.Bytes)
		r.prog.expect("v:"+t.qualified(), t.Bytes)
	}
	phases := map[string]float64{}
	status := map[string]string{
		"create":         "creating the database",
		"pre_data":       "creating the schema",
		"post_data_list": "creating the schema",
		"data":           "",
		"post_data":      "building the other constraints, triggers and indexes",
		"verify":         "verifying the large objects and sequences",
	}
	phase := func(name string, f func() error) error {
		r.prog.setPhase(status[name])
		start := time.Now()
		err := f()
		phases[name] = time.Since(start).Seconds()
		return err
	}
	if err := phase("create", func() error { return r.createStaging(ctx, maint) }); err != nil {
		return res, err
	}
	// The post-data archive is written out and listed (no server
	// session) while pg_restore creates the schema.
	r.tool = pgRestore
	type prepared struct {
		pp  *postPlan
		err error
	}
	postCtx, stopPost := context.WithCancel(ctx)
	defer stopPost()
	postc := make(chan prepared, 1)
	go func() {
		pp, err := r.preparePost(postCtx, pgRestore)
		postc <- prepared{pp, err}
	}()
	err = phase("pre_data", func() error { return r.pgRestore(ctx, pgRestore, preDataName, "pre") })
	if err != nil {
		stopPost()
	}
	var post prepared
	_ = phase("post_data_list", func() error { post = <-postc; return nil })
	r.post = post.pp
	defer r.post.close()
	if err != nil {
		return res, err
	}
	if post.err != nil {
		return res, post.err
	}
	if err := phase("data", func() error { return r.loadData(ctx) }); err != nil {
		return res, err
	}
	if err := phase("post_data", func() error {
		if err := r.restoreEntries(ctx, pgRestore, r.post, r.post.rest, r.post.all, r.p.workers(), "rest.list"); err != nil {
			return err
		}
		r.prog.finish("post", man.PostDataSize)
		return nil
	}); err != nil {
		return res, err
	}
	var rows int64
	if err := phase("verify", func() error {
		var err error
		rows, err = r.verify(ctx)
		return err
	}); err != nil {
		return res, err
	}

	sc := r.req.Scope
	created := NewResource(sc.Region, sc.AccountID, r.final, r.srv.ID, r.final, nil)
	created.CreatedByRestoreJob = r.req.JobID
	if r.req.CopySourceTags && len(r.req.RecoveryPoint.Tags) > 0 {
		created.Tags = map[string]string{}
		for k, v := range r.req.RecoveryPoint.Tags {
			created.Tags[k] = v
		}
	}
	var bytes int64
	for _, t := range man.Tables {
		bytes += t.Bytes
	}
	bytes += man.LargeObjects.Bytes
	res = resource.RestoreResult{Created: created, TargetArn: created.Arn, Location: "/", Items: int64(len(man.Tables)), Bytes: bytes,
		Summary: fmt.Sprintf("Restored database %s on server %s: %d tables, %d rows, %d large objects, %d bytes of data; %s",
			r.final, r.srv.ID, len(man.Tables), rows, man.LargeObjects.Count, bytes, r.verified()),
		Details: details{Server: r.srv.ID, Database: r.final, Tables: len(man.Tables), Rows: rows, Bytes: bytes,
			LargeObjects: man.LargeObjects.Count, Sequences: len(man.Sequences), Verified: true, CountOnly: r.countOnly.Load(), StreamVerified: r.streamVerified.Load(),
			PostDataWithTables: r.post.built.Load(), PostDataBySession: r.post.bySession.Load(), SourceVersion: man.ServerVersion, TargetVersion: version, PgRestoreVersion: pgRestore.version, Owner: r.srv.User, Seconds: phases},
		Finish:  r.finish,
		Discard: r.discard,
	}
	return res, nil
}

// verified says how the restore was verified.
func (r *restorer) verified() string {
	if n := r.countOnly.Load(); n > 0 {
		return fmt.Sprintf("every table verified (row count; the checksums of %d tables are not comparable on this server, whose hash functions differ from the source's)", n)
	}
	return "every table verified (row count and checksum)"
}

// details are recorded as the job's ResultJSON.
type details struct {
	Server       string `json:"server"`
	Database     string `json:"database"`
	Tables       int    `json:"tables"`
	Rows         int64  `json:"rows"`
	Bytes        int64  `json:"bytes"`
	LargeObjects int64  `json:"large_objects"`
	Sequences    int    `json:"sequences"`
	Verified     bool   `json:"verified"`
	CountOnly    int64  `json:"tables_verified_by_count_only,omitempty"`
	// StreamVerified counts the tables verified as they were loaded (the
	// stream checked against the checksum at backup time, its SHA-256 and
	// COPY's row count at restore), not read again.
	StreamVerified int64 `json:"tables_verified_by_stream"`
	// PostDataWithTables counts the post-data entries (indexes, keys)
	// built as soon as their table was loaded.
	PostDataWithTables int64 `json:"post_data_with_tables"`
	// PostDataBySession counts those of them Coffer ran over its own
	// sessions (pg_restore's script of them), not by running pg_restore.
	PostDataBySession int64  `json:"post_data_by_session"`
	SourceVersion     string `json:"source_server_version"`
	TargetVersion     string `json:"target_server_version"`
	PgRestoreVersion  string `json:"pg_restore_version"`
	Owner             string `json:"owner"`
	// Seconds each phase took: create, pre_data, post_data_list (what
	// listing the post-data took beyond pre_data, beside which it runs),
	// data (with the tables' own indexes), post_data, verify.
	Seconds map[string]float64 `json:"seconds"`
}

// createStaging creates the empty staging database with the source's
// encoding and locale (the target server's default locale when it lacks
// the source's) and marks it with the job.
func (r *restorer) createStaging(ctx context.Context, maint *pgx.Conn) error {
	man := r.st.man
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	base := "CREATE DATABASE " + ident(r.staging) + " TEMPLATE template0 ENCODING " + lit(man.Encoding)
	_, err := maint.Exec(ctx, base+" LC_COLLATE "+lit(man.Collate)+" LC_CTYPE "+lit(man.CType))
	if err != nil && ctx.Err() == nil {
		r.p.log().Warn("restore: the source's locale is not available on the target server; using its default", "job", r.req.JobID,
			"server", r.srv.ID, "collate", man.Collate, "err", err)
		_, err = maint.Exec(ctx, base)
	}
	if err != nil {
		return r.srv.queryError(err, "create database "+r.staging)
	}
	r.created = true
	if _, err := maint.Exec(ctx, "COMMENT ON DATABASE "+ident(r.staging)+" IS "+lit(marker(r.req.JobID, r.final))); err != nil {
		return r.srv.queryError(err, "mark database "+r.staging)
	}
	return nil
}

// pgRestore runs pg_restore for one schema archive from its stream in one
// transaction (the pre-data; the post-data goes through preparePost and
// restoreEntries). The archives hold DDL only, never rows.
func (r *restorer) pgRestore(ctx context.Context, t tool, file, item string) error {
	node, ok := r.st.files[file]
	if !ok {
		return fmt.Errorf("%w: the backup has no %s", resource.ErrCorrupt, file)
	}
	args := []string{"--no-owner", "--no-tablespaces", "--no-subscriptions", "--exit-on-error", "--dbname=" + r.srv.conninfo(r.staging)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	br := newBlobReader(ctx, r.req.Snapshot.Loader, node.Content, 4)
	defer br.Close()
	cw := &countWriter{t: r.prog, name: item}
	cmd := r.srv.command(ctx, t, append(args, "--single-transaction")...)
	cmd.Stdin = io.TeeReader(br, cw)
	var stderr stderrTail
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return failed(nil, "pg_restore of the %s into database %s on server %s failed: %s", strings.TrimSuffix(file, ".pgdump"),
			r.staging, r.srv.ID, stderr.summary(r.srv))
	}
	cw.flush()
	r.prog.finish(item, node.Size)
	return nil
}

// sessions opens n sessions to the staging database.
func (r *restorer) sessions(ctx context.Context, n int) ([]*pgx.Conn, func(), error) {
	var conns []*pgx.Conn
	closeAll := func() {
		for _, c := range conns {
			c.Close(context.WithoutCancel(ctx))
		}
	}
	for range n {
		c, err := r.srv.connect(ctx, r.staging)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		conns = append(conns, c)
	}
	return conns, closeAll, nil
}

// loadData loads every table's rows, the large objects and the sequences,
// the largest tables first, one table per session.
func (r *restorer) loadData(ctx context.Context) error {
	man := r.st.man
	conns, closeAll, err := r.sessions(ctx, max(1, min(r.p.workers(), len(man.Tables))))
	if err != nil {
		return err
	}
	defer closeAll()
	if err := r.probe(ctx, conns[0]); err != nil {
		return err
	}
	order := r.loadOrder()
	// The work is a queue of tasks: the large objects and each table's
	// load, largest first; a loaded table's verification and index
	// builds go to the front, as separate tasks any session takes, so
	// that at the end a session that has nothing left to load verifies
	// or indexes the last large table beside the one building another
	// of its indexes (pg_restore -j likewise builds one index per job).
	q := &taskQueue{}
	if man.LargeObjects.Count > 0 {
		q.push(false, restoreTask{kind: taskLargeObjects})
	}
	for _, i := range order {
		q.push(false, restoreTask{kind: taskLoad, table: i})
	}
	g, gctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(gctx, q.cancel)
	defer stop()
	for _, c := range conns {
		g.Go(func() error {
			s := &session{conn: c}
			defer s.close(ctx)
			for {
				tk, ok := q.pop()
				if !ok {
					return gctx.Err()
				}
				err := r.runTask(gctx, s, tk, q)
				q.done()
				if err != nil {
					q.cancel()
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, s := range man.Sequences {
		if _, err := conns[0].Exec(ctx, "SELECT pg_catalog.setval($1::regclass, $2, $3)", ident(s.Schema, s.Name), s.LastValue, s.IsCalled); err != nil {
			return r.srv.queryError(err, "set sequence "+s.Schema+"."+s.Name)
		}
	}
	return nil
}

// Kinds of restore tasks.
const (
	taskLargeObjects = iota
	taskLoad
	taskVerify
	taskPost
)

// restoreTask is one piece of loadData's work: table is an index into
// Manifest.Tables, post the post-data entries of a taskPost.
type restoreTask struct {
	kind, table int
	post        *postTask
}

// bigTable is the size from which a table's post-data entries are built
// one per task (in parallel); smaller tables build theirs in one task.
const bigTable = 64 << 20

// loadOrder is the order tables are loaded in: the largest first.
func (r *restorer) loadOrder() []int {
	man := r.st.man
	order := make([]int, len(man.Tables))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return man.Tables[order[a]].Bytes > man.Tables[order[b]].Bytes })
	return order
}

// session is one of loadData's workers: conn loads and verifies tables;
// ddl, opened at its first post-data task, runs the post-data scripts
// (they change the session's settings as pg_restore's do its own, so
// they never run on conn).
type session struct {
	conn, ddl *pgx.Conn
}

func (s *session) close(ctx context.Context) {
	if s.ddl != nil {
		s.ddl.Close(context.WithoutCancel(ctx))
	}
}

// runTask runs tk on session s; a load queues the table's verification
// and index builds.
func (r *restorer) runTask(ctx context.Context, s *session, tk restoreTask, q *taskQueue) error {
	man := r.st.man
	c := s.conn
	switch tk.kind {
	case taskLargeObjects:
		return r.loadLargeObjects(ctx, c)
	case taskLoad:
		verified, err := r.loadTable(ctx, c, &man.Tables[tk.table])
		if err != nil {
			return err
		}
		// Its rows are final (post-data adds indexes, constraints and
		// triggers only): verified (unless its load was) and indexed
		// now, while other tables still load.
		var follow []restoreTask
		if !verified {
			follow = append(follow, restoreTask{kind: taskVerify, table: tk.table})
		}
		if r.post != nil && !r.post.all {
			for _, pt := range r.post.tasks[tk.table] {
				follow = append(follow, restoreTask{kind: taskPost, table: tk.table, post: pt})
			}
		}
		if len(follow) > 0 {
			q.push(true, follow...)
		}
		return nil
	case taskVerify:
		return r.verifyTable(ctx, c, &man.Tables[tk.table])
	default:
		return r.buildPost(ctx, s, &man.Tables[tk.table], tk.post)
	}
}

// buildPost builds some of a loaded table's post-data entries in one
// transaction: pg_restore's script of them run over the session's ddl
// connection (what pg_restore would send, without starting a process
// and a server session per task), or pg_restore itself when the script
// is not runnable (postScript).
func (r *restorer) buildPost(ctx context.Context, s *session, t *Table, pt *postTask) error {
	select {
	case <-pt.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if !pt.runnable {
		n := r.post.seq.Add(1)
		err := r.restoreEntries(ctx, r.tool, r.post, pt.lines, false, 1, "entries-"+strconv.FormatInt(n, 10)+".list")
		if err == nil {
			r.post.built.Add(int64(len(pt.lines)))
		}
		return err
	}
	if s.ddl == nil {
		c, err := r.srv.connectPlain(ctx, r.staging)
		if err != nil {
			return err
		}
		s.ddl = c
	}
	if _, err := s.ddl.PgConn().Exec(ctx, pt.sql).ReadAll(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return r.srv.queryError(err, "build the indexes and constraints of table "+t.qualified())
	}
	r.post.built.Add(int64(len(pt.lines)))
	r.post.bySession.Add(int64(len(pt.lines)))
	return nil
}

// taskQueue hands restore tasks to sessions: pop waits while none is
// queued but some still run (they may queue more), and reports false once
// all is done or the queue is cancelled.
type taskQueue struct {
	mu        sync.Mutex
	cond      *sync.Cond
	tasks     []restoreTask
	running   int
	cancelled bool
}

func (q *taskQueue) init() {
	if q.cond == nil {
		q.cond = sync.NewCond(&q.mu)
	}
}

// push queues tasks, at the front when first.
func (q *taskQueue) push(first bool, tasks ...restoreTask) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.init()
	if first {
		q.tasks = append(append([]restoreTask(nil), tasks...), q.tasks...)
	} else {
		q.tasks = append(q.tasks, tasks...)
	}
	q.cond.Broadcast()
}

func (q *taskQueue) pop() (restoreTask, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.init()
	for !q.cancelled && len(q.tasks) == 0 && q.running > 0 {
		q.cond.Wait()
	}
	if q.cancelled || len(q.tasks) == 0 {
		return restoreTask{}, false
	}
	tk := q.tasks[0]
	q.tasks = q.tasks[1:]
	q.running++
	return tk, true
}

// done ends a popped task.
func (q *taskQueue) done() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.init()
	q.running--
	q.cond.Broadcast()
}

func (q *taskQueue) cancel() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.init()
	q.cancelled = true
	q.cond.Broadcast()
}

// loadTable loads t's rows in one transaction, checking before the commit
// that they are the stream backed up (its BLAKE3 or SHA-256 hash) and that COPY counted
// the rows recorded. verified says the table needs no verification task:
// its stream was checked against its checksum at backup time
// (Table.StreamCheck) and no trigger changed the rows as they were
// stored, so the rows loaded are those backed up.
func (r *restorer) loadTable(ctx context.Context, c *pgx.Conn, t *Table) (verified bool, err error) {
	if h := r.p.hooks.beforeTable; h != nil {
		h(t.qualified())
	}
	node := r.st.tables[t.fileName()]
	rows, err := layersReader(ctx, r.req.Snapshot.Loader, node.Content, t.layers())
	if err != nil {
		return false, fmt.Errorf("%w: table %s: %w", resource.ErrCorrupt, t.qualified(), err)
	}
	defer rows.Close()
	name := "t:" + t.qualified()
	cw := &countWriter{t: r.prog, name: name}
	sum, wantSum, sumName := t.streamHash()
	sumW := io.Discard
	if sum != nil {
		sumW = sum
	}
	// The rows go in frozen (COPY FREEZE, which needs the table emptied
	// in the same transaction): the verification right after and the
	// index builds then read them without visibility lookups and without
	// rewriting every page to set hint bits.
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		return false, r.srv.queryError(err, "load table "+t.qualified())
	}
	committed := false
	defer func() {
		if !committed {
			_, _ = c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if _, err := c.Exec(ctx, "TRUNCATE ONLY "+ident(t.Schema, t.Name)); err != nil {
		return false, r.srv.queryError(err, "load table "+t.qualified())
	}
	// A stream checked at backup time verifies the rows loaded from it
	// when nothing changes rows as COPY stores them: a trigger (the
	// schema's come after the rows; the TRUNCATE's lock keeps new ones
	// out until the commit) makes the table verified by reading it.
	byStream := t.StreamCheck == StreamCheckV1 && sum != nil && t.ChecksumMethod == ChecksumText && r.st.man.ChecksumAlgorithm == ChecksumAlgorithm
	if byStream {
		var triggers bool
		if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1::regclass)", ident(t.Schema, t.Name)).Scan(&triggers); err != nil {
			return false, r.srv.queryError(err, "load table "+t.qualified())
		}
		byStream = !triggers
	}
	src := &errReader{r: rows}
	tag, err := c.PgConn().CopyFrom(ctx, io.TeeReader(src, io.MultiWriter(cw, sumW)), copyInSQL(t)+" (FREEZE)")
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if errors.Is(err, repository.ErrCorrupt) || errors.Is(src.err, repository.ErrCorrupt) {
			if src.err != nil {
				err = src.err
			}
			return false, fmt.Errorf("%w: table %s: %w", resource.ErrCorrupt, t.qualified(), err)
		}
		return false, r.srv.queryError(err, "load table "+t.qualified())
	}
	if sum != nil {
		if got := hex.EncodeToString(sum.Sum(nil)); got != wantSum {
			return false, failed(resource.ErrCorrupt, "the rows of table %s read back from the recovery point differ from those backed up (%s %s, recorded %s)",
				t.qualified(), sumName, got, wantSum)
		}
	}
	if n := tag.RowsAffected(); n != t.Rows {
		return false, failed(resource.ErrCorrupt, "verification of the restored database failed: %d rows of table %s loaded, the backup recorded %d",
			n, t.qualified(), t.Rows)
	}
	if _, err := c.Exec(ctx, "COMMIT"); err != nil {
		return false, r.srv.queryError(err, "load table "+t.qualified())
	}
	committed = true
	cw.flush()
	r.prog.finish(name, t.Bytes)
	if byStream {
		r.streamVerified.Add(1)
		r.prog.finish("v:"+t.qualified(), t.Bytes)
		return true, nil
	}
	return false, nil
}

// errReader keeps the error its reader failed with (COPY reports it as
// text).
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = err
	}
	return n, err
}

// loadLargeObjects writes the large objects stream back (pre-data created
// the objects with their oids, owners aside).
func (r *restorer) loadLargeObjects(ctx context.Context, c *pgx.Conn) error {
	node, ok := r.st.files[largeObjsName]
	if !ok {
		return fmt.Errorf("%w: the backup lists large objects but has no %s", resource.ErrCorrupt, largeObjsName)
	}
	br := newBlobReader(ctx, r.req.Snapshot.Loader, node.Content, 4)
	defer br.Close()
	cw := &countWriter{t: r.prog, name: "lo"}
	rd := bufio.NewReaderSize(io.TeeReader(br, cw), 64<<10)
	bad := func(what string) error {
		return fmt.Errorf("%w: large objects stream: %s", resource.ErrCorrupt, what)
	}
	var oid uint64
	var off int64
	buf := make([]byte, 0, loPiece)
	for {
		line, err := rd.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return bad("truncated")
			}
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "L "):
			if oid, err = strconv.ParseUint(line[2:], 10, 32); err != nil {
				return bad("bad object header")
			}
			off = 0
			var exists bool
			if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_largeobject_metadata WHERE oid = $1)", uint32(oid)).Scan(&exists); err != nil {
				return r.srv.queryError(err, "look up large object")
			}
			if !exists {
				if _, err := c.Exec(ctx, "SELECT lo_create($1)", uint32(oid)); err != nil {
					return r.srv.queryError(err, fmt.Sprintf("create large object %d", oid))
				}
			}
		case strings.HasPrefix(line, "P "):
			n, err := strconv.Atoi(line[2:])
			if err != nil || n <= 0 || n > loPiece || oid == 0 {
				return bad("bad piece header")
			}
			buf = buf[:n]
			if _, err := io.ReadFull(rd, buf); err != nil {
				return bad("truncated piece")
			}
			if _, err := c.Exec(ctx, "SELECT lo_put($1, $2, $3)", uint32(oid), off, buf); err != nil {
				return r.srv.queryError(err, fmt.Sprintf("write large object %d", oid))
			}
			off += int64(n)
		case line == "E":
			oid = 0
		default:
			return bad("unexpected line")
		}
	}
	cw.flush()
	r.prog.finish("lo", node.Size)
	return nil
}

// probe reads the target server's checksum probes.
func (r *restorer) probe(ctx context.Context, c *pgx.Conn) error {
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		return r.srv.queryError(err, "probe the checksum functions")
	}
	probes, err := checksumProbes(ctx, c)
	if err == nil {
		_, err = c.Exec(ctx, "COMMIT")
	}
	if err != nil {
		return r.srv.queryError(err, "probe the checksum functions")
	}
	r.probes = probes
	return nil
}

// comparable reports whether checksums of method computed on the target
// server compare with the backup's.
func (r *restorer) comparable(method string) bool {
	man := r.st.man
	return man.ChecksumAlgorithm == ChecksumAlgorithm && man.ChecksumProbes[method] != "" && man.ChecksumProbes[method] == r.probes[method]
}

// verifyTable recomputes a loaded table's row count and checksum in the
// staging database and compares them with the backup's.
func (r *restorer) verifyTable(ctx context.Context, c *pgx.Conn, t *Table) error {
	var n int64
	var sum string
	if r.comparable(t.ChecksumMethod) {
		if err := c.QueryRow(ctx, checksumSQL(t, t.ChecksumMethod)).Scan(&n, &sum); err != nil {
			return r.srv.queryError(err, "verify table "+t.qualified())
		}
	} else {
		r.countOnly.Add(1)
		sum = t.Checksum
		if err := c.QueryRow(ctx, "SELECT count(*) FROM ONLY "+ident(t.Schema, t.Name)).Scan(&n); err != nil {
			return r.srv.queryError(err, "verify table "+t.qualified())
		}
	}
	if n != t.Rows || sum != t.Checksum {
		return failed(resource.ErrCorrupt, "verification of the restored database failed: table %s has %d rows (checksum %s), the backup recorded %d rows (checksum %s)",
			t.qualified(), n, sum, t.Rows, t.Checksum)
	}
	r.prog.finish("v:"+t.qualified(), t.Bytes)
	return nil
}

// verify checks, once the schema is complete, the large objects' count
// and checksum and the sequences' state against the backup's (each table
// was verified as it was loaded). It returns the rows verified.
func (r *restorer) verify(ctx context.Context) (int64, error) {
	man := r.st.man
	var rows int64
	for _, t := range man.Tables {
		rows += t.Rows
	}
	c, err := r.srv.connect(ctx, r.staging)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if lo := man.LargeObjects; lo.Count > 0 && r.comparable(ChecksumText) {
		var n int64
		var sum string
		if err := c.QueryRow(ctx, largeObjectsSQL).Scan(&n, &sum); err != nil {
			return 0, r.srv.queryError(err, "verify large objects")
		}
		if n != lo.Count || sum != lo.Checksum {
			return 0, failed(resource.ErrCorrupt, "verification of the restored database failed: %d large objects (checksum %s), the backup recorded %d (checksum %s)",
				n, sum, lo.Count, lo.Checksum)
		}
	}
	for _, s := range man.Sequences {
		var last int64
		var called bool
		if err := c.QueryRow(ctx, "SELECT last_value, is_called FROM "+ident(s.Schema, s.Name)).Scan(&last, &called); err != nil {
			return 0, r.srv.queryError(err, "verify sequence "+s.Schema+"."+s.Name)
		}
		if last != s.LastValue || called != s.IsCalled {
			return 0, failed(resource.ErrCorrupt, "verification of the restored database failed: sequence %s.%s is at %d, the backup recorded %d", s.Schema, s.Name, last, s.LastValue)
		}
	}
	return rows, nil
}

// finish renames the verified staging database to its final name (the
// core calls it inside the transaction that completes the job).
func (r *restorer) finish(ctx context.Context) error {
	c, err := r.srv.maintenance(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, "ALTER DATABASE "+ident(r.staging)+" RENAME TO "+ident(r.final)); err != nil {
		return r.srv.queryError(err, "rename database "+r.staging+" to "+r.final)
	}
	return nil
}

// discard drops the staging database, and the database under the final
// name when this job's restore renamed it but was not committed.
func (r *restorer) discard(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := r.srv.maintenance(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var errs []error
	for _, name := range []string{r.staging, r.final} {
		var comment *string
		err := c.QueryRow(ctx, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name).Scan(&comment)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			errs = append(errs, r.srv.queryError(err, "look up database "+name))
			continue
		}
		if name != r.staging {
			if comment == nil {
				continue
			}
			if job, final, ok := parseMarker(*comment); !ok || job != r.req.JobID || final != r.final {
				continue
			}
		}
		if err := dropDatabase(ctx, c, name); err != nil {
			errs = append(errs, r.srv.queryError(err, "drop database "+name))
		}
	}
	return errors.Join(errs...)
}

// dropDatabase drops a database, ending its sessions first.
func dropDatabase(ctx context.Context, c *pgx.Conn, name string) error {
	major, _, err := serverVersion(ctx, c)
	if err != nil {
		return err
	}
	if major >= 13 {
		_, err = c.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)")
		return err
	}
	if _, err := c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
		return err
	}
	_, err = c.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name))
	return err
}
