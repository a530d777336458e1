// Package pgtest starts real PostgreSQL servers for tests: initdb into a
// temporary directory, then the installed postgres binary, listening on a
// free loopback port with password (SCRAM) authentication. When the tests
// run as root the server runs as the postgres (or nobody) user, since
// PostgreSQL refuses to run as root. Binaries are looked up under
// /usr/lib/postgresql/*/bin (the highest version), /usr/pgsql-*/bin, and
// on PATH; .ci/run installs the postgresql package when they are missing.
package pgtest

import (
	"context"
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

// Superuser and its password on every server (the password is what the
// tests pass to Coffer's config).
const (
	Superuser = "coffer"
	Password  = "coffer-test-password-9d1e"
)

// Server is a running PostgreSQL server.
type Server struct {
	Host    string
	Port    int
	BinDir  string
	Major   int
	Version string // e.g. "15.18"
	root    string // temporary directory: data/, log, pwfile
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the postmaster has exited
	opts    Options
	cred    *syscall.Credential
	mu      sync.Mutex
	stopped bool
}

// Options tune a server.
type Options struct {
	// Autovacuum leaves autovacuum on (off by default: it changes database
	// sizes while a test compares two backups).
	Autovacuum bool
	// Settings are extra postgres -c settings.
	Settings map[string]string
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) ([0-9]+)(\.[0-9]+)?`)

// BinDirs lists directories holding initdb and postgres, highest version
// first.
func BinDirs() []string {
	var dirs []string
	for _, pat := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"} {
		m, _ := filepath.Glob(pat)
		dirs = append(dirs, m...)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
		}
		dirs = append(dirs, filepath.Dir(p))
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
		if _, err := os.Stat(filepath.Join(d, "postgres")); err != nil {
			continue
		}
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

func binVersion(bin string) (int, string, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return 0, "", err
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return 0, "", fmt.Errorf("%s --version: unexpected output %q", bin, out)
	}
	major, _ := strconv.Atoi(m[1])
	return major, m[1] + m[2], nil
}

// runAs is the user the server runs as when the tests run as root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("running as root and neither a postgres nor a nobody user exists")
}

// Start initialises and starts a server; it stops at the end of the test
// (or use Stop).
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := New(opts)
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

// ErrNoBinaries means PostgreSQL's server programs are not installed.
var ErrNoBinaries = errors.New("pgtest: no PostgreSQL server binaries (initdb, postgres) installed")

// New initialises and starts a server that lives until Close (for a
// server shared by a package's tests).
func New(opts Options) (*Server, error) {
	dirs := BinDirs()
	if len(dirs) == 0 {
		return nil, ErrNoBinaries
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", BinDir: dirs[0], cred: cred}
	if s.Major, s.Version, err = binVersion(filepath.Join(s.BinDir, "postgres")); err != nil {
		return nil, err
	}
	if s.root, err = os.MkdirTemp("", "coffer-pgtest-"); err != nil {
		return nil, err
	}
	if err := s.initdb(); err != nil {
		s.Close()
		return nil, err
	}
	s.opts = opts
	for attempt := 0; ; attempt++ {
		err := s.launch(opts)
		if err == nil {
			return s, nil
		}
		if attempt == 4 {
			s.Close()
			return nil, err
		}
	}
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.BinDir, name), args...)
	cmd.SysProcAttr = sysProcAttr(s.cred)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	return cmd
}

func (s *Server) initdb() error {
	pw := filepath.Join(s.root, "pwfile")
	if err := os.WriteFile(pw, []byte(Password+"\n"), 0o600); err != nil {
		return err
	}
	if s.cred != nil {
		for _, p := range []string{s.root, pw} {
			if err := os.Chown(p, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return err
			}
		}
	}
	out, err := s.command("initdb", "-D", filepath.Join(s.root, "data"), "-U", Superuser, "--pwfile="+pw,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) launch(opts Options) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	if p, ok := opts.Settings["port"]; ok {
		port, _ = strconv.Atoi(p)
	}
	settings := map[string]string{
		"listen_addresses": "127.0.0.1", "port": strconv.Itoa(port), "unix_socket_directories": "",
		"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "60",
		"shared_buffers": "32MB", "log_min_messages": "warning", "log_min_error_statement": "panic",
		"autovacuum": "off", "max_wal_size": "1GB",
	}
	if opts.Autovacuum {
		settings["autovacuum"] = "on"
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	args := []string{"-D", filepath.Join(s.root, "data")}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	logf, err := os.OpenFile(filepath.Join(s.root, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := s.command("postgres", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(exited) }()
	s.Port = port
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := pgx.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			s.cmd, s.exited, s.stopped = cmd, exited, false
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(s.root, "server.log"))
			return fmt.Errorf("pgtest: postgres exited (%v):\n%s", werr, tail(string(log), 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("pgtest: postgres did not accept connections within a minute: %w", err)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Pid is the postmaster's process id (0 when the server is not running);
// benchmarks read its CPU time and its backends'.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil || s.stopped {
		return 0
	}
	return s.cmd.Process.Pid
}

// DSN is a connection string for database db as the superuser.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname='%s' sslmode=disable connect_timeout=10",
		s.Host, s.Port, Superuser, Password, strings.ReplaceAll(strings.ReplaceAll(db, `\`, `\\`), `'`, `\'`))
}

// Connect opens a connection to db; it closes at the end of the test
// (use Open for one closed earlier).
func (s *Server) Connect(tb testing.TB, db string) *pgx.Conn {
	tb.Helper()
	c := s.Open(tb, db)
	tb.Cleanup(func() { c.Close(context.Background()) })
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
// db.
func (s *Server) Exec(tb testing.TB, db, sql string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		tb.Fatalf("pgtest: connect to %s: %v", db, err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, sql); err != nil {
		tb.Fatalf("pgtest: in %s: %v\n%s", db, err, tail(sql, 500))
	}
}

// CreateDB creates database name (dropping a previous one).
func (s *Server) CreateDB(tb testing.TB, name string) {
	tb.Helper()
	s.Exec(tb, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	s.Exec(tb, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
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

// Stop shuts the server down (fast shutdown), keeping its data directory;
// Restart starts it again on the same port.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.cmd == nil {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// Restart starts a stopped server again on the same port.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		return
	}
	opts := s.opts
	settings := map[string]string{}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	settings["port"] = strconv.Itoa(s.Port)
	opts.Settings = settings
	if err := s.launch(opts); err != nil {
		tb.Fatal(err)
	}
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	s.Stop()
	if s.root != "" && os.Getenv("PGTEST_KEEP") == "" {
		_ = os.RemoveAll(s.root)
	}
}
