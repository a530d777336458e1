// Package pgtest runs throw-away PostgreSQL servers for tests and
// benchmarks: initdb into a temporary directory with the installed server
// binaries, then postgres on a free loopback port with password (SCRAM)
// authentication. A test (or a whole test binary, see Main and Shared)
// gets a server it can stop, crash and restart on the same port, with
// databases it creates by name (CreateDB) or fresh empty ones (TempDB,
// SchemaDSN).
//
// The binaries are looked up in /usr/lib/postgresql/*/bin (Debian,
// Ubuntu), /usr/pgsql-*/bin (RHEL), /usr/local/pgsql/bin and on PATH; the
// highest major version wins. .ci/run installs the postgresql package when
// none is found. PostgreSQL refuses to run as root, so when the tests run
// as root the server runs as the postgres user (or nobody). Without
// binaries a test is skipped, and fails in CI.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
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

// Superuser is the superuser of every server and Password its password
// (what tests put in Coffer's configs).
const (
	Superuser = "coffer"
	Password  = "coffer-test-password-9d1e"
)

// ErrNoBinaries means PostgreSQL's server programs are not installed.
var ErrNoBinaries = errors.New("pgtest: no PostgreSQL server binaries (initdb, postgres) installed")

// Server is one running PostgreSQL server.
type Server struct {
	// Host and Port are where it listens (Port stays the same across
	// restarts).
	Host string
	Port int
	// BinDir is the directory of its programs (initdb, postgres, and
	// pg_dump, psql... when installed alongside).
	BinDir string
	// Major and Version are the server's version, e.g. 15 and "15.18".
	Major   int
	Version string

	root string // temporary directory: data/, pwfile, server.log
	cred *syscall.Credential
	opts Options

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil when stopped
	done chan struct{} // closed when cmd has exited
}

// Options tune a server.
type Options struct {
	// Autovacuum turns autovacuum on (off by default: it changes database
	// sizes and statistics while a test compares two backups).
	Autovacuum bool
	// Settings are extra `postgres -c` settings (e.g. shared_buffers);
	// they override the defaults.
	Settings map[string]string
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) ([0-9]+)((\.[0-9]+)*)`)

// BinDirs lists the directories holding initdb and postgres, highest
// major version first.
func BinDirs() []string {
	var dirs []string
	for _, pat := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"} {
		m, _ := filepath.Glob(pat)
		dirs = append(dirs, m...)
	}
	for _, name := range []string{"postgres", "initdb"} {
		if p, err := exec.LookPath(name); err == nil {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				p = r
			}
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	type cand struct {
		dir   string
		major int
	}
	var cs []cand
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		major, _, err := binVersion(filepath.Join(d, "postgres"))
		if err != nil {
			continue
		}
		cs = append(cs, cand{d, major})
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].major > cs[j].major })
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.dir
	}
	return out
}

// binVersion runs `postgres --version`: 15, "15.18".
func binVersion(bin string) (int, string, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return 0, "", fmt.Errorf("pgtest: %s --version: %w", bin, err)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return 0, "", fmt.Errorf("pgtest: %s --version: unexpected output %q", bin, out)
	}
	major, _ := strconv.Atoi(m[1])
	return major, m[1] + m[2], nil
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

// Start starts a server for one test; it is removed when the test ends.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	s, err := New(o)
	if err != nil {
		Fail(tb, err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Fail ends a test whose server did not start: a skip outside CI when
// PostgreSQL is not installed, else a failure.
func Fail(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, ErrNoBinaries) {
		testutil.SkipOrFail(tb, "%v", err)
	}
	tb.Fatal(err)
}

// New starts a server that lives until Close (for a server shared by
// many tests, or a benchmark program).
func New(o Options) (*Server, error) {
	dirs := BinDirs()
	if len(dirs) == 0 {
		return nil, ErrNoBinaries
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", BinDir: dirs[0], cred: cred, opts: o}
	if s.Major, s.Version, err = binVersion(filepath.Join(s.BinDir, "postgres")); err != nil {
		return nil, err
	}
	if s.root, err = os.MkdirTemp("", "coffer-pgtest-"); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
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
	cmd := exec.Command(filepath.Join(s.BinDir, name), args...)
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
	out, err := s.command("initdb", "--pgdata", filepath.Join(s.root, "data"), "--username", Superuser, "--pwfile", pw,
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
		"max_connections": "200", "shared_buffers": "64MB", "max_wal_size": "1GB",
		"log_min_messages": "warning", "log_min_error_statement": "panic", "log_checkpoints": "off",
		"autovacuum": "off",
	}
	if s.opts.Autovacuum {
		sets["autovacuum"] = "on"
	}
	for k, v := range s.opts.Settings {
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
	var werr error
	go func() { werr = cmd.Wait(); close(done) }()
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
			return fmt.Errorf("pgtest: postgres exited at start (%v): %s", werr, s.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("pgtest: postgres does not accept connections within a minute: %w", err)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Pid is the postmaster's process id, 0 when the server is not running
// (benchmarks read its CPU time and its backends').
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runningLocked() {
		return 0
	}
	return s.cmd.Process.Pid
}

// DSN is a key=value connection string for database db as the superuser.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname='%s' sslmode=disable connect_timeout=10",
		s.Host, s.Port, Superuser, Password, strings.ReplaceAll(strings.ReplaceAll(db, `\`, `\\`), `'`, `\'`))
}

// URL is the same as DSN in URL form (postgres://...).
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable&connect_timeout=10", Superuser, Password,
		net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), url.PathEscape(db))
}

// Connect opens a connection to db that is closed when the test ends (see
// Open for one the caller closes).
func (s *Server) Connect(tb testing.TB, db string) *pgx.Conn {
	tb.Helper()
	c := s.Open(tb, db)
	tb.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// Open opens a connection to db that the caller closes.
func (s *Server) Open(tb testing.TB, db string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		tb.Fatalf("pgtest: connect to %s: %v", db, err)
	}
	return c
}

// Exec runs SQL statements (separated by semicolons, no parameters) in
// database db.
func (s *Server) Exec(tb testing.TB, db, sql string) {
	tb.Helper()
	if err := s.exec(db, sql); err != nil {
		tb.Fatal(err)
	}
}

func (s *Server) exec(db, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		return fmt.Errorf("pgtest: connect to %s: %w", db, err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: in %s: %w\n%s", db, err, tail(sql, 500))
	}
	return nil
}

// QueryRow runs a one-row query in db on a connection of its own and
// scans the row into dest.
func (s *Server) QueryRow(tb testing.TB, db, sql string, dest ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		tb.Fatalf("pgtest: connect to %s: %v", db, err)
	}
	defer c.Close(context.Background())
	if err := c.QueryRow(ctx, sql).Scan(dest...); err != nil {
		tb.Fatalf("pgtest: in %s: %v\n%s", db, err, sql)
	}
}

// CreateDB creates the empty database name, dropping one of that name
// first. It stays when the test ends (tests that share a server pick
// unique names).
func (s *Server) CreateDB(tb testing.TB, name string) {
	tb.Helper()
	s.Exec(tb, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	s.Exec(tb, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// TempDB creates an empty database with a random name and returns the
// name; it is dropped when the test ends (if the server still runs).
func (s *Server) TempDB(tb testing.TB) string {
	tb.Helper()
	name := "t_" + randomSuffix(tb)
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
	name := "s_" + randomSuffix(tb)
	s.Exec(tb, "postgres", "CREATE SCHEMA "+name)
	tb.Cleanup(func() {
		if s.Running() {
			_ = s.exec("postgres", "DROP SCHEMA IF EXISTS "+name+" CASCADE")
		}
	})
	return s.DSN("postgres") + " search_path=" + name
}

// randomSuffix is 12 lower-case hex digits: with a letter prefix, a name
// that needs no quoting.
func randomSuffix(tb testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// Databases lists the server's databases but the built-in ones, sorted.
func (s *Server) Databases(tb testing.TB) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres','template0','template1') ORDER BY datname")
	if err != nil {
		tb.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatal(err)
	}
	return names
}

// Running reports whether the server process runs.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

func (s *Server) runningLocked() bool {
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

// stopLocked signals the server and waits for it to exit. s.mu is held.
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

// Restart starts a stopped (or crashed) server again on the same port,
// with the same options.
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

// Close stops the server and removes its files (kept when PGTEST_KEEP is
// set).
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

// Shared returns the server shared by the tests of this test binary
// (default Options), starting it on first use. The package's TestMain
// must call Main so that it is stopped at the end.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = New(Options{})
	}
	if sharedErr != nil {
		Fail(tb, sharedErr)
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
