// Package pgtest runs a throw-away PostgreSQL server for tests: initdb into
// a temporary directory with the installed server binaries, then postgres
// on a free loopback port with password authentication. A test (or a whole
// test binary, see Main and Shared) gets a server it can stop, crash and
// restart on the same port, and fresh empty databases on it.
//
// The binaries are looked up in /usr/lib/postgresql/*/bin (Debian,
// Ubuntu), /usr/pgsql-*/bin (RHEL) and on PATH; .ci/run installs the
// postgresql package when none is found. PostgreSQL refuses to run as
// root, so when the tests run as root the server runs as the postgres
// user (or nobody). Without binaries a test is skipped, and fails in CI.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coffer/internal/testutil"
)

// User is the superuser of every server; Password is its password.
const (
	User     = "coffer_test"
	Password = "pgtest-9f3c-secret"
)

// ErrNoServer means no PostgreSQL server binaries are installed.
var ErrNoServer = errors.New("pgtest: no PostgreSQL server binaries (initdb, postgres) found")

// Server is one PostgreSQL server started by a test.
type Server struct {
	// Host and Port are where it listens (Port stays the same across
	// restarts).
	Host string
	Port int
	// Version is the server's version, e.g. "15.18".
	Version string

	bin  string // directory of initdb and postgres
	root string // temporary directory: data/, pwfile, server.log
	cred *syscall.Credential
	sets map[string]string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) ([0-9]+)((\.[0-9]+)*)`)

// binDir returns the directory of the newest installed server binaries.
func binDir() (string, string, error) {
	var dirs []string
	for _, pat := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"} {
		m, _ := filepath.Glob(pat)
		dirs = append(dirs, m...)
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	best, bestVer, bestMajor := "", "", -1
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		out, err := exec.Command(filepath.Join(d, "postgres"), "--version").Output()
		if err != nil {
			continue
		}
		m := versionRE.FindStringSubmatch(string(out))
		if m == nil {
			continue
		}
		major, _ := strconv.Atoi(m[1])
		if major > bestMajor {
			best, bestVer, bestMajor = d, m[1]+m[2], major
		}
	}
	if best == "" {
		return "", "", ErrNoServer
	}
	return best, bestVer, nil
}

// serverUser is who the server runs as: nil (the caller) unless the tests
// run as root.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("pgtest: running as root, and there is no postgres or nobody user to run the server as")
}

// Options tune a server.
type Options struct {
	// Settings are extra `postgres -c` settings (e.g. max_connections).
	Settings map[string]string
}

// Start starts a server for one test; it is removed when the test ends.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	s, err := New(o)
	if err != nil {
		if errors.Is(err, ErrNoServer) {
			testutil.SkipOrFail(tb, "%v", err)
		}
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// New starts a server that lives until Close.
func New(o Options) (*Server, error) {
	bin, ver, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "coffer-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{Host: "127.0.0.1", Version: ver, bin: bin, root: root, cred: cred, sets: o.Settings}
	if err := s.initdb(); err != nil {
		s.Close()
		return nil, err
	}
	for try := 0; ; try++ {
		if s.Port, err = freePort(); err == nil {
			err = s.launch()
		}
		if err == nil {
			return s, nil
		}
		if try == 4 {
			s.Close()
			return nil, err
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "TZ=UTC")
	cmd.SysProcAttr = sysProcAttr(s.cred)
	return cmd
}

func (s *Server) initdb() error {
	pw := filepath.Join(s.root, "pwfile")
	if err := os.WriteFile(pw, []byte(Password+"\n"), 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if s.cred != nil {
		for _, p := range []string{s.root, pw} {
			if err := os.Chown(p, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: %w", err)
			}
		}
	}
	out, err := s.command("initdb", "--pgdata", filepath.Join(s.root, "data"), "--username", User, "--pwfile", pw,
		"--auth", "scram-sha-256", "--encoding", "UTF8", "--locale", "C", "--no-sync").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

// launch starts postgres on s.Port and waits until it accepts
// connections. s.mu is held or the server is not shared yet.
func (s *Server) launch() error {
	sets := map[string]string{
		"listen_addresses": s.Host, "port": strconv.Itoa(s.Port), "unix_socket_directories": "",
		// A crash of the server process (Crash) keeps every committed
		// transaction: commits wait for the WAL write (synchronous_commit),
		// which the operating system keeps even without fsync. A crash of
		// the machine is not the tests' business.
		"fsync": "off", "synchronous_commit": "on", "full_page_writes": "off",
		"max_connections": "200", "shared_buffers": "64MB", "log_min_messages": "fatal",
		"log_min_error_statement": "panic", "log_checkpoints": "off",
	}
	for k, v := range s.sets {
		sets[k] = v
	}
	args := []string{"-D", filepath.Join(s.root, "data")}
	keys := make([]string, 0, len(sets))
	for k := range sets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+sets[k])
	}
	logf, err := os.OpenFile(filepath.Join(s.root, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	cmd := s.command("postgres", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := pgx.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			_ = c.Close(context.Background())
			s.cmd, s.done = cmd, done
			return nil
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(s.root, "server.log"))
			return fmt.Errorf("pgtest: postgres exited at start: %s", tail(string(b), 3000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("pgtest: postgres does not accept connections: %w", err)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// DSN is a key=value connection string for database db as the superuser.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable connect_timeout=10",
		s.Host, s.Port, User, Password, db)
}

// URL is the same as DSN in URL form (postgres://...).
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable&connect_timeout=10", User, Password,
		net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), db)
}

// Exec runs sql (statements without parameters) in database db.
func (s *Server) Exec(tb testing.TB, db, sql string) {
	tb.Helper()
	if err := s.exec(db, sql); err != nil {
		tb.Fatal(err)
	}
}

func (s *Server) exec(db, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		return fmt.Errorf("pgtest: connect to %s: %w", db, err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: in %s: %w", db, err)
	}
	return nil
}

var dbNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateDB creates an empty database with a random name and returns its
// name; it is dropped when the test ends (if the server still runs).
func (s *Server) CreateDB(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := "t_" + hex.EncodeToString(b[:])
	if !dbNameRE.MatchString(name) {
		tb.Fatalf("pgtest: bad database name %q", name)
	}
	s.Exec(tb, "postgres", "CREATE DATABASE "+name)
	tb.Cleanup(func() {
		if s.Running() {
			_ = s.exec("postgres", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
	})
	return name
}

// SchemaDSN creates an empty schema with a random name in the database
// "postgres" and returns a DSN whose sessions use it (search_path): a
// fresh, empty place for one test that is much cheaper than a database.
// It is dropped when the test ends (if the server still runs).
func (s *Server) SchemaDSN(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := "s_" + hex.EncodeToString(b[:])
	s.Exec(tb, "postgres", "CREATE SCHEMA "+name)
	tb.Cleanup(func() {
		if s.Running() {
			_ = s.exec("postgres", "DROP SCHEMA IF EXISTS "+name+" CASCADE")
		}
	})
	return s.DSN("postgres") + " search_path=" + name
}

// Running reports whether the server process runs.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop signals the server and waits for it to exit. s.mu is held.
func (s *Server) stopLocked(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(sig)
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.cmd = nil
}

// Stop shuts the server down cleanly (fast shutdown: open transactions are
// rolled back, clients disconnected). Its data stays for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGINT)
}

// Crash stops the server the way `pg_ctl stop -m immediate` does: no
// shutdown checkpoint, crash recovery at the next start.
func (s *Server) Crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGQUIT)
}

// Restart starts a stopped server again on the same port.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	var err error
	for try := 0; try < 20; try++ {
		// The port may linger for a moment after the old process exited.
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	tb.Fatal(err)
}

// Log returns the end of the server's log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.root, "server.log"))
	return tail(string(b), 5000)
}

// Close stops the server and removes its files.
func (s *Server) Close() {
	s.Stop()
	if s.root != "" && os.Getenv("PGTEST_KEEP") == "" {
		_ = os.RemoveAll(s.root)
	}
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
)

// Shared returns the server shared by the tests of this test binary,
// starting it on first use. The package's TestMain must call Main so that
// it is stopped at the end.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = New(Options{})
	}
	if sharedErr != nil {
		if errors.Is(sharedErr, ErrNoServer) {
			testutil.SkipOrFail(tb, "%v", sharedErr)
		}
		tb.Fatal(sharedErr)
	}
	return shared
}

// Main runs the tests and then stops the shared server: call it from
// TestMain as os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Close()
		shared = nil
	}
	return code
}

// Redacted returns dsn with its password replaced, for test messages.
func Redacted(dsn string) string {
	return strings.ReplaceAll(dsn, Password, "xxx")
}
