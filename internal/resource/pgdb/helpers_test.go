package pgdb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/resource/pgdb"
	"coffer/internal/testutil/pgtest"
)

// The package's tests share one server (pgtest.Shared, started on first
// use) and name their databases uniquely.
var shared struct {
	once sync.Once
	err  error // creating readerRole
	seq  int
	mu   sync.Mutex
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// server is the shared server, with readerRole.
func server(t testing.TB) *pgtest.Server {
	t.Helper()
	s := pgtest.Shared(t)
	shared.once.Do(func() { shared.err = execSQL(s, "postgres", "CREATE ROLE "+readerRole) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return s
}

func execSQL(s *pgtest.Server, db, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// uniqueName is a new database name with prefix.
func uniqueName(prefix string) string {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.seq++
	return fmt.Sprintf("%s-%d", prefix, shared.seq)
}

// serverConfig is s as a configured server named id.
func serverConfig(s *pgtest.Server, id string) pgdb.Server {
	return pgdb.Server{ID: id, Host: s.Host, Port: s.Port, User: pgtest.Superuser, Password: pgtest.Password, SSLMode: "disable"}
}

// newPlugin is a plugin with the shared server as "pg" plus more servers.
func newPlugin(t testing.TB, more ...pgdb.Server) *pgdb.Plugin {
	t.Helper()
	s := server(t)
	return &pgdb.Plugin{Servers: append([]pgdb.Server{serverConfig(s, "pg")}, more...), TempDir: t.TempDir()}
}

// newDB creates a database on s with the rich schema and rows rows, and
// returns it as a resource of server id.
func newDB(t testing.TB, s *pgtest.Server, serverID, name string, rows int) *backup.Resource {
	t.Helper()
	s.CreateDB(t, name)
	s.Exec(t, name, richSchema(rows))
	return pgdb.NewResource("us-east-1", "111111111111", name, serverID, name, map[string]string{"env": "test"})
}

// pgDump runs the server's pg_dump with args (schema comparisons).
func pgDump(t testing.TB, s *pgtest.Server, db string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(s.BinDir, "pg_dump"), append(args, "--dbname="+s.DSN(db))...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("pg_dump %s: %v\n%s", db, err, ee.Stderr)
		}
		t.Fatalf("pg_dump %s: %v", db, err)
	}
	return string(out)
}

var volatileDumpLine = regexp.MustCompile(`(?m)^(\\restrict|\\unrestrict|-- Dumped).*\n`)

// schemaOf is a database's schema as pg_dump prints it, owners and
// volatile lines left out.
func schemaOf(t testing.TB, s *pgtest.Server, db string) string {
	return volatileDumpLine.ReplaceAllString(pgDump(t, s, db, "--schema-only", "--no-owner", "--no-tablespaces"), "")
}

// contentOf digests a database's data: every table's rows (sorted text),
// sequences, large objects and comments on them, one line each.
// Materialized views are left out: a restore refreshes them from the
// restored rows (as pg_restore does), so a stale one differs.
func contentOf(t testing.TB, s *pgtest.Server, db string) []string {
	t.Helper()
	ctx := context.Background()
	c := s.Open(t, db)
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'`)
	if err != nil {
		t.Fatal(err)
	}
	type rel struct{ schema, name string }
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		return x, r.Scan(&x.schema, &x.name)
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rels {
		q := pgx.Identifier{r.schema, r.name}.Sanitize()
		var n int64
		var sum string
		if err := c.QueryRow(ctx, "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM ONLY "+q+" t").Scan(&n, &sum); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, fmt.Sprintf("table %s: %d rows %s", q, n, sum))
	}
	rows, err = c.Query(ctx, "SELECT schemaname || '.' || sequencename || ' ' || coalesce(last_value::text, 'null') FROM pg_sequences")
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seqs {
		out = append(out, "sequence "+s)
	}
	rows, err = c.Query(ctx, "SELECT oid::text || ' ' || md5(lo_get(oid)) || ' ' || coalesce(obj_description(oid, 'pg_largeobject'), '') FROM pg_largeobject_metadata")
	if err != nil {
		t.Fatal(err)
	}
	los, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range los {
		out = append(out, "large object "+l)
	}
	sort.Strings(out)
	return out
}

// sameDatabase fails unless databases a and b (possibly on two servers)
// have the same schema and content.
func sameDatabase(t testing.TB, sa *pgtest.Server, a string, sb *pgtest.Server, b string) {
	t.Helper()
	if x, y := schemaOf(t, sa, a), schemaOf(t, sb, b); x != y {
		t.Errorf("schema of %s differs from %s:\n%s", b, a, lineDiff(x, y))
	}
	if x, y := strings.Join(contentOf(t, sa, a), "\n"), strings.Join(contentOf(t, sb, b), "\n"); x != y {
		t.Errorf("content of %s differs from %s:\n%s", b, a, lineDiff(x, y))
	}
}

// lineDiff lists the lines only one side has.
func lineDiff(a, b string) string {
	in := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l, n := range ma {
		if mb[l] < n {
			out = append(out, "- "+l)
		}
	}
	for l, n := range mb {
		if ma[l] < n {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("... and %d more", len(out)-40))
	}
	return strings.Join(out, "\n")
}

func manifestOf(t testing.TB, snap resource.Snapshot) *pgdb.Manifest {
	t.Helper()
	m, err := pgdb.ReadManifest(context.Background(), snap.Loader, snap.Root)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// builtWithTables is how many post-data entries (indexes, keys) a restore
// built as soon as their table was loaded.
func builtWithTables(t testing.TB, res resource.RestoreResult) int64 {
	t.Helper()
	return detailCount(t, res, "post_data_with_tables")
}

// detailCount is the count key of a restore's details.
func detailCount(t testing.TB, res resource.RestoreResult, key string) int64 {
	t.Helper()
	b, err := json.Marshal(res.Details)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	n, ok := d[key].(float64)
	if !ok {
		t.Fatalf("restore details %s: no %s", b, key)
	}
	return int64(n)
}
