package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"coffer/internal/clock"
)

// Sample is the cost of one measured operation.
type Sample struct {
	Wall   time.Duration // wall clock of the child, from start to exit
	User   time.Duration
	Sys    time.Duration
	MaxRSS int64 // peak resident set size in bytes (getrusage ru_maxrss)
	// RSSFloor is the harness's own peak RSS when the child started. Go
	// starts children with vfork, and Linux carries the parent's RSS
	// high-water mark into the child's ru_maxrss at exec, so a MaxRSS not
	// above RSSFloor only says "at most RSSFloor".
	RSSFloor int64
}

// Floored reports whether MaxRSS is the harness's floor rather than the
// child's own peak.
func (s Sample) Floored() bool { return s.MaxRSS <= s.RSSFloor }

// Runner starts child processes and measures them.
type Runner struct {
	Clock clock.Clock
	// Verbose, when set, receives the children's stderr as it is written.
	Verbose io.Writer
}

// Run runs cmd to completion and measures it. cmd.Stderr must be nil (the
// runner keeps its tail for error messages); cmd.Stdout, when nil, is
// captured and returned.
func (r Runner) Run(ctx context.Context, cmd *exec.Cmd) (Sample, []byte, error) {
	if cmd.Stderr != nil {
		return Sample{}, nil, fmt.Errorf("run %s: Stderr is set by the runner", cmd.Path)
	}
	tail := &tailBuffer{max: 8 << 10}
	if r.Verbose != nil {
		cmd.Stderr = io.MultiWriter(tail, r.Verbose)
	} else {
		cmd.Stderr = tail
	}
	var out *bytes.Buffer
	if cmd.Stdout == nil {
		out = &bytes.Buffer{}
		cmd.Stdout = &limitedWriter{w: out, n: 1 << 20}
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	clk := r.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	var self syscall.Rusage
	floor := int64(-1)
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) == nil {
		floor = self.Maxrss << 10
	}
	start := clk.Now()
	err := cmd.Run()
	wall := clk.Now().Sub(start)
	var s Sample
	if st := cmd.ProcessState; st != nil {
		s = Sample{Wall: wall, User: st.UserTime(), Sys: st.SystemTime(), RSSFloor: floor}
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			s.MaxRSS = ru.Maxrss << 10 // KiB on Linux
		}
	}
	var stdout []byte
	if out != nil {
		stdout = out.Bytes()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return s, stdout, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, indent(tail.String()))
	}
	return s, stdout, nil
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "  (no stderr output)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		return "[...]" + string(t.buf)
	}
	return string(t.buf)
}

// limitedWriter keeps at most n bytes and drops the rest without failing the
// child.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	keep := min(len(p), l.n)
	if keep > 0 {
		if _, err := l.w.Write(p[:keep]); err != nil {
			return 0, err
		}
		l.n -= keep
	}
	return len(p), nil
}
