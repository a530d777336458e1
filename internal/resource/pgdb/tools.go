package pgdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultBinDirs are where PostgreSQL client programs are looked for when
// Plugin.BinDirs is empty (besides PATH): Debian/Ubuntu, RHEL (PGDG) and
// source builds.
var DefaultBinDirs = []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"}

// tool is an installed PostgreSQL client program.
type tool struct {
	path    string
	major   int
	version string
}

var toolVersionRE = regexp.MustCompile(`\(PostgreSQL\) ([0-9]+)(\.[0-9]+)?`)

// ErrTool marks a missing or too old client program.
var ErrTool = errors.New("PostgreSQL client program unusable")

// findTool returns the highest version of program name (pg_dump,
// pg_restore) found, which must be of major version minMajor or later.
func (p *Plugin) findTool(ctx context.Context, name string, minMajor int, why string) (tool, error) {
	var cands []string
	dirs := p.BinDirs
	if len(dirs) == 0 {
		for _, pat := range DefaultBinDirs {
			m, _ := filepath.Glob(pat)
			dirs = append(dirs, m...)
		}
		if path, err := exec.LookPath(name); err == nil {
			cands = append(cands, path)
		}
	}
	for _, d := range dirs {
		cands = append(cands, filepath.Join(d, name))
	}
	var found []tool
	seen := map[string]bool{}
	for _, c := range cands {
		if seen[c] {
			continue
		}
		seen[c] = true
		if st, err := os.Stat(c); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			continue
		}
		t, err := toolVersion(ctx, c)
		if err != nil {
			continue
		}
		found = append(found, t)
	}
	if len(found) == 0 {
		return tool{}, fmt.Errorf("%w: %s not found: install the PostgreSQL client programs (version %d or later) to %s", ErrTool, name, minMajor, why)
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].major > found[j].major })
	best := found[0]
	if best.major < minMajor {
		return tool{}, fmt.Errorf("%w: %s %s is older than PostgreSQL %d, which it must %s: install the PostgreSQL %d client programs or later",
			ErrTool, name, best.version, minMajor, why, minMajor)
	}
	return best, nil
}

func toolVersion(ctx context.Context, path string) (tool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return tool{}, err
	}
	m := toolVersionRE.FindStringSubmatch(string(out))
	if m == nil {
		return tool{}, fmt.Errorf("%s --version: unexpected output", path)
	}
	major, _ := strconv.Atoi(m[1])
	return tool{path: path, major: major, version: m[1] + m[2]}, nil
}

// command prepares a client program run against s with a clean
// environment: the password travels in PGPASSWORD (never on the command
// line), TLS settings (PGSSL*) pass through.
func (s *Server) command(ctx context.Context, t tool, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, t.path, args...)
	env := []string{"LC_ALL=C", "LANG=C", "PGCONNECT_TIMEOUT=30", "PGAPPNAME=coffer", "PATH=/usr/bin:/bin"}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PGSSL") || strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	if s.Password != "" {
		env = append(env, "PGPASSWORD="+s.Password)
	}
	cmd.Env = env
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// stderrTail keeps the last bytes a program wrote to stderr.
type stderrTail struct {
	buf bytes.Buffer
}

const maxStderr = 16 << 10

func (w *stderrTail) Write(b []byte) (int, error) {
	w.buf.Write(b)
	if w.buf.Len() > 2*maxStderr {
		rest := w.buf.Bytes()[w.buf.Len()-maxStderr:]
		w.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return len(b), nil
}

var errorLineRE = regexp.MustCompile(`(?m)^(?:pg_dump|pg_restore): error: (.*)$`)
var pgErrorRE = regexp.MustCompile(`(?m)(ERROR|FATAL):  (.*)$`)
var commandWasRE = regexp.MustCompile(`(?m)^Command was: (.*)$`)

// summary is the gist of a client program's failure: its first error and
// the server's message and statement when there is one.
func (w *stderrTail) summary(s *Server) string {
	out := w.buf.String()
	msg := ""
	if m := pgErrorRE.FindStringSubmatch(out); m != nil {
		msg = m[1] + ": " + m[2]
		if c := commandWasRE.FindStringSubmatch(out); c != nil {
			msg += " (while running: " + trunc(c[1]) + ")"
		}
	} else if m := errorLineRE.FindStringSubmatch(out); m != nil {
		msg = m[1]
	} else {
		msg = strings.TrimSpace(out)
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
	}
	if len(msg) > 600 {
		msg = msg[:600] + "..."
	}
	return s.scrub(msg)
}

var _ io.Writer = (*stderrTail)(nil)
