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
	// rest are the other lines; all is set when the archive was not
	// split (a backup recorded without Manifest.TableIndexes).
	rest  []string
	all   bool
	built atomic.Int64 // entries built with their table
	seq   atomic.Int64 // numbers the list files
}

func (pp *postPlan) close() {
	if pp != nil && pp.dir != "" {
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
	ok = true
	return pp, nil
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
