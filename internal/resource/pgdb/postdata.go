package pgdb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"coffer/internal/resource"
)

// postPlan is a restore's post-data archive (indexes, constraints,
// triggers, …) in a private temporary file, its entries split into those
// built as soon as their table is loaded and the rest, built after the
// last table (docs/design/postgres-databases.md, "Restore").
type postPlan struct {
	dir, path string
	// perTable are the archive's table-of-contents lines of each table
	// (by index in Manifest.Tables): its indexes and its primary key,
	// unique and exclusion constraints.
	perTable map[int][]string
	// tasks are each table's post-data tasks: the entries of perTable
	// built in one transaction, one entry per task for tables of bigTable
	// bytes or more. Their SQL is written by pg_restore in the background
	// (scripts) while the tables load.
	tasks map[int][]*postTask
	stop  context.CancelFunc
	gen   chan struct{} // closed when the scripts are written
	// rest are the other lines; all is set when the archive was not
	// split (a backup recorded without Manifest.TableIndexes).
	rest  []string
	all   bool
	built atomic.Int64 // entries built with their table
	// bySession counts the entries of built run over Coffer's own
	// sessions from pg_restore's script (the others by pg_restore).
	bySession atomic.Int64
	seq       atomic.Int64 // numbers the list files
}

// postTask is some entries of a table's post-data, built in one
// transaction: sql is pg_restore's script of them as Coffer runs it
// (runnable), set once ready is closed.
type postTask struct {
	lines    []string
	ready    chan struct{}
	sql      string
	runnable bool
}

func (pp *postPlan) close() {
	if pp == nil {
		return
	}
	if pp.stop != nil {
		pp.stop()
		<-pp.gen
	}
	if pp.dir != "" {
		_ = os.RemoveAll(pp.dir)
	}
}

// preparePost writes the post-data archive to a temporary file (pg_restore
// -L and -j need one; it holds DDL only, never rows) and splits its
// entries by table.
func (r *restorer) preparePost(ctx context.Context, t tool) (*postPlan, error) {
	node, ok := r.st.files[postDataName]
	if !ok {
		return nil, fmt.Errorf("%w: the backup has no %s", resource.ErrCorrupt, postDataName)
	}
	dir, err := os.MkdirTemp(r.p.TempDir, "coffer-pgrestore-")
	if err != nil {
		return nil, fmt.Errorf("restore: temporary directory: %w", err)
	}
	pp := &postPlan{dir: dir, path: filepath.Join(dir, postDataName), all: true}
	ok = false
	defer func() {
		if !ok {
			pp.close()
		}
	}()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	br := newBlobReader(cctx, r.req.Snapshot.Loader, node.Content, 4)
	defer br.Close()
	f, err := os.OpenFile(pp.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	cw := &countWriter{t: r.prog, name: "post"}
	_, err = io.Copy(f, io.TeeReader(br, cw))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("restore: read %s: %w", postDataName, err)
	}
	cw.flush()
	if !r.st.man.TableIndexes {
		ok = true
		return pp, nil
	}
	var out, stderr bytes.Buffer
	cmd := r.srv.command(ctx, t, "--list", pp.path)
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, failed(nil, "pg_restore could not list the post-data archive of the backup: %s",
			strings.ReplaceAll(strings.TrimSpace(stderr.String()), dir+string(filepath.Separator), ""))
	}
	pp.perTable, pp.rest = splitTOC(strings.Split(out.String(), "\n"), r.st.man.Tables)
	pp.all = false
	pp.tasks = map[int][]*postTask{}
	var order []*postTask
	for _, i := range r.loadOrder() {
		lines := pp.perTable[i]
		switch {
		case len(lines) == 0:
		case r.st.man.Tables[i].Bytes >= bigTable:
			for _, l := range lines {
				pp.tasks[i] = append(pp.tasks[i], &postTask{lines: []string{l}, ready: make(chan struct{})})
			}
		default:
			pp.tasks[i] = append(pp.tasks[i], &postTask{lines: lines, ready: make(chan struct{})})
		}
		order = append(order, pp.tasks[i]...)
	}
	gctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	pp.stop, pp.gen = stop, make(chan struct{})
	go func() {
		defer close(pp.gen)
		for _, pt := range order {
			if gctx.Err() == nil {
				pt.sql, pt.runnable = r.postScript(gctx, t, pp, pt.lines)
			}
			close(pt.ready)
		}
	}()
	ok = true
	return pp, nil
}

// postScript has pg_restore write the SQL of some post-data entries, as
// it would run them in one transaction into the staging database
// (restoreEntries with one job), and returns it as Coffer's session runs
// it: the psql meta-commands \restrict and \unrestrict that frame the
// script (they only guard psql against the script's contents) removed.
// runnable is false, and pg_restore itself runs the entries, when the
// script cannot be run over a session as it is: it could not be
// written, holds another meta-command, or is not in UTF8 (the database's
// encoding and the one the script sets: Coffer's sessions send UTF8;
// pg_restore sets the archive's encoding).
func (r *restorer) postScript(ctx context.Context, t tool, pp *postPlan, lines []string) (string, bool) {
	if r.st.man.Encoding != "UTF8" {
		return "", false
	}
	lf := filepath.Join(pp.dir, "script-"+strconv.FormatInt(pp.seq.Add(1), 10)+".list")
	if err := os.WriteFile(lf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return "", false
	}
	defer os.Remove(lf)
	var out bytes.Buffer
	cmd := r.srv.command(ctx, t, "--no-owner", "--no-tablespaces", "--no-subscriptions", "--single-transaction", "--use-list="+lf, "--file=-", pp.path)
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", false
	}
	return sessionScript(out.String())
}

// sessionScript turns a pg_restore script into SQL a session runs (see
// postScript). Any line starting with a backslash other than the frame
// makes it not runnable, even one inside a string literal that psql
// would not read as a meta-command: pg_restore runs those.
func sessionScript(script string) (string, bool) {
	var key, encoding string
	var kept []string
	for _, l := range strings.Split(script, "\n") {
		switch {
		case key == "" && strings.HasPrefix(l, `\restrict `):
			key = strings.TrimPrefix(l, `\restrict `)
			continue
		case key != "" && l == `\unrestrict `+key:
			continue
		case strings.HasPrefix(l, `\`):
			return "", false
		case encoding == "" && strings.HasPrefix(l, "SET client_encoding = "):
			encoding = l
		}
		kept = append(kept, l)
	}
	if encoding != "SET client_encoding = 'UTF8';" {
		return "", false
	}
	return strings.Join(kept, "\n"), true
}

// splitTOC splits pg_restore --list lines ("id; tableoid oid DESC schema
// tag owner") into each table's index and constraint entries and the
// rest (comments and blank lines dropped). Names may hold spaces, so an
// entry is matched by its longest prefix ending before a space that names
// one of the tables' indexes ("INDEX schema name") or constraints
// ("CONSTRAINT schema table name"); every entry goes to one place once.
func splitTOC(lines []string, tables []Table) (map[int][]string, []string) {
	keys := map[string]int{}
	for i := range tables {
		t := &tables[i]
		for _, n := range t.Indexes {
			keys["INDEX "+t.Schema+" "+n] = i
		}
		for _, n := range t.Constraints {
			keys["CONSTRAINT "+t.Schema+" "+t.Name+" "+n] = i
		}
	}
	per := map[int][]string{}
	var rest []string
	used := map[string]bool{}
	for _, line := range lines {
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		_, entry, ok := strings.Cut(line, "; ")
		if ok {
			// Skip the catalog and object oids.
			f := strings.SplitN(entry, " ", 3)
			if len(f) == 3 && isUint(f[0]) && isUint(f[1]) {
				entry = f[2]
			} else {
				ok = false
			}
		}
		table, found := -1, ""
		if ok {
			for i := len(entry); i > 0; i-- {
				if i < len(entry) && entry[i] != ' ' {
					continue
				}
				if ti, hit := keys[entry[:i]]; hit && !used[entry[:i]] {
					table, found = ti, entry[:i]
					break
				}
			}
		}
		if table < 0 {
			rest = append(rest, line)
			continue
		}
		used[found] = true
		per[table] = append(per[table], line)
	}
	return per, rest
}

func isUint(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// restoreEntries runs pg_restore for the given entries of the post-data
// archive (all of it when all is set), with jobs sessions.
func (r *restorer) restoreEntries(ctx context.Context, t tool, pp *postPlan, lines []string, all bool, jobs int, list string) error {
	args := []string{"--no-owner", "--no-tablespaces", "--no-subscriptions", "--exit-on-error", "--dbname=" + r.srv.conninfo(r.staging)}
	if !all {
		if len(lines) == 0 {
			return nil
		}
		lf := filepath.Join(pp.dir, list)
		if err := os.WriteFile(lf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		defer os.Remove(lf)
		args = append(args, "--use-list="+lf)
	}
	if jobs > 1 {
		args = append(args, "--jobs="+strconv.Itoa(jobs))
	} else {
		args = append(args, "--single-transaction")
	}
	cmd := r.srv.command(ctx, t, append(args, pp.path)...)
	var stderr stderrTail
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.ReplaceAll(stderr.summary(r.srv), pp.dir+string(filepath.Separator), "")
		return failed(nil, "pg_restore of the post-data into database %s on server %s failed: %s", r.staging, r.srv.ID, msg)
	}
	return nil
}
