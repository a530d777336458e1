package pgtest_test

import (
	"context"
	"testing"

	"coffer/internal/resource/pgdb/pgtest"
)

// A server starts, accepts password logins, stops and restarts on its
// port with its data.
func TestStartStopRestart(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{})
	s.CreateDB(t, "probe")
	s.Exec(t, "probe", "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
	s.Stop()
	s.Restart(t)
	var x int
	if err := s.Connect(t, "probe").QueryRow(context.Background(), "SELECT x FROM t").Scan(&x); err != nil || x != 42 {
		t.Fatalf("after restart: %d, %v", x, err)
	}
	if got := s.Databases(t); len(got) != 1 || got[0] != "probe" {
		t.Fatalf("databases %v", got)
	}
}
