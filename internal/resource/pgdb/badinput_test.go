package pgdb_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"coffer/internal/resource"
	"coffer/internal/resource/pgdb"
	"coffer/internal/testutil/pgtest"
)

// closedPort is a loopback address nobody listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// A server that is down, a wrong password and a missing database fail the
// backup with a message naming the server and never the password; a
// missing database is ErrSourceNotFound.
func TestBackupConnectionFailures(t *testing.T) {
	s := server(t)
	const secret = "wrong-password-never-shown-5c2b"
	bad := serverConfig(s, "badpw")
	bad.Password = secret
	down := pgdb.Server{ID: "down", Host: "127.0.0.1", Port: closedPort(t), User: "coffer", Password: secret, SSLMode: "disable"}
	p := newPlugin(t, bad, down)
	name := uniqueName("conn")
	s.CreateDB(t, name)
	for _, tc := range []struct {
		server, db string
		want       []string
		notFound   bool
	}{
		{"badpw", name, []string{"badpw", "password authentication failed"}, false},
		{"down", name, []string{"down", "cannot connect", "refused"}, false},
		{"pg", "no_such_database", []string{"no_such_database", "does not exist", "pg"}, true},
	} {
		r := pgdb.NewResource("us-east-1", "111111111111", "db", tc.server, tc.db, nil)
		_, _, err := backupErr(t, p, r)
		if err == nil {
			t.Fatalf("%s/%s: backup succeeded", tc.server, tc.db)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.server, err, w)
			}
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), pgtest.Password) {
			t.Errorf("%s: error shows a password: %v", tc.server, err)
		}
		if got := errors.Is(err, resource.ErrSourceNotFound); got != tc.notFound {
			t.Errorf("%s: ErrSourceNotFound = %v: %v", tc.server, got, err)
		}
	}
}

// pg_dump missing, or older than the server, refuses the backup with a
// message saying what to install.
func TestBackupRefusesMissingOrOldPgDump(t *testing.T) {
	s := server(t)
	src := newDB(t, s, "pg", uniqueName("tools"), 100)
	empty := t.TempDir()
	old := t.TempDir()
	script := "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n"
	if err := os.WriteFile(filepath.Join(old, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dirs []string
		want string
	}{
		{[]string{empty}, "pg_dump not found"},
		{[]string{old}, "pg_dump 9.6 is older than PostgreSQL"},
	} {
		p := newPlugin(t)
		p.BinDirs = tc.dirs
		_, _, err := backupErr(t, p, src)
		if err == nil || !errors.Is(err, pgdb.ErrTool) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "install") {
			t.Errorf("bin dirs %v: %v, want %q", tc.dirs, err, tc.want)
		}
	}
}

// A database dropped while it is being backed up fails the backup as a
// missing resource.
func TestBackupOfDroppedDatabase(t *testing.T) {
	s := server(t)
	src := newDB(t, s, "pg", uniqueName("dropped"), 1000)
	p := newPlugin(t)
	pgdb.SetHooks(p, func() {
		s.Exec(t, "postgres", "DROP DATABASE "+`"`+src.ID+`"`+" WITH (FORCE)")
	}, nil)
	_, _, err := backupErr(t, p, src)
	if !errors.Is(err, resource.ErrSourceNotFound) || !strings.Contains(err.Error(), "dropped during the backup") {
		t.Fatalf("backup of a dropped database: %v", err)
	}
}
