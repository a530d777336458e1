package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"coffer/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestServer: a temporary database is created empty, answers queries,
// survives a crash and a restart on the same port with its committed
// data, through both connection string forms.
func TestServer(t *testing.T) {
	s := pgtest.Shared(t)
	if s.Major < 10 || s.Version == "" || s.BinDir == "" {
		t.Fatalf("version %d %q, binaries in %q", s.Major, s.Version, s.BinDir)
	}
	db := s.TempDB(t)
	s.Exec(t, db, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
	port := s.Port
	s.Crash()
	if s.Running() || s.Pid() != 0 {
		t.Fatal("running after Crash")
	}
	s.Restart(t)
	if s.Port != port {
		t.Fatalf("port %d after restart, was %d", s.Port, port)
	}
	if s.Pid() == 0 {
		t.Fatal("no pid after Restart")
	}
	for _, dsn := range []string{s.DSN(db), s.URL(db)} {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatalf("connect %s: %v", pgtest.Redacted(dsn), err)
		}
		var x int
		if err := c.QueryRow(context.Background(), "SELECT x FROM t").Scan(&x); err != nil || x != 42 {
			t.Fatalf("x = %d, %v", x, err)
		}
		c.Close(context.Background())
	}
}

// TestStartStopRestart: a server of its own starts with autovacuum off,
// creates a database by a name that needs quoting, stops cleanly and
// restarts with its data and its options.
func TestStartStopRestart(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"work_mem": "8MB"}})
	const name = "Probe-'db'"
	s.CreateDB(t, name)
	s.Exec(t, name, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
	s.Stop()
	if s.Running() {
		t.Fatal("running after Stop")
	}
	s.Restart(t)
	var x int
	if err := s.Connect(t, name).QueryRow(context.Background(), "SELECT x FROM t").Scan(&x); err != nil || x != 42 {
		t.Fatalf("after restart: %d, %v", x, err)
	}
	if got := s.Databases(t); len(got) != 1 || got[0] != name {
		t.Fatalf("databases %v", got)
	}
	var autovacuum, workMem string
	s.QueryRow(t, "postgres", "SELECT current_setting('autovacuum'), current_setting('work_mem')", &autovacuum, &workMem)
	if autovacuum != "off" || workMem != "8MB" {
		t.Fatalf("autovacuum %s, work_mem %s after restart", autovacuum, workMem)
	}
	c := s.Open(t, "postgres")
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
