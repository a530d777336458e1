package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"coffer/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestServer: a database is created empty, answers queries, survives a
// crash and a restart on the same port with its committed data.
func TestServer(t *testing.T) {
	s := pgtest.Shared(t)
	db := s.CreateDB(t)
	s.Exec(t, db, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
	port := s.Port
	s.Crash()
	if s.Running() {
		t.Fatal("running after Crash")
	}
	s.Restart(t)
	if s.Port != port {
		t.Fatalf("port %d after restart, was %d", s.Port, port)
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
