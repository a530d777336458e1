package cofferproc

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recordingTB records what Start and Kill report instead of failing the
// test that drives them; Fatal/Fatalf end the calling goroutine like the
// real ones do.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	fatal  string
	errors []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatal(args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprint(args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// script writes an executable shell script standing in for the coffer
// binary.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "coffer")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs Start in its own goroutine (Fatal ends it) and returns the
// Proc, or nil when Start failed.
func start(tb *recordingTB, bin string) *Proc {
	var p *Proc
	done := make(chan struct{})
	go func() {
		defer close(done)
		p = Start(tb, bin, "unused.yaml")
	}()
	<-done
	return p
}

// A process that exits before listening fails the test with its exit status
// and the log lines it wrote, not just "exited".
func TestStartReportsEarlyExit(t *testing.T) {
	bin := script(t, `echo 'level=INFO msg="starting"' >&2
echo 'level=ERROR msg="config: listen: must be host:port"' >&2
exit 3
`)
	tb := &recordingTB{TB: t}
	if p := start(tb, bin); p != nil {
		t.Fatalf("Start returned %+v for a process that exited", p)
	}
	for _, want := range []string{"exited before listening", "exit status 3", `msg="config: listen: must be host:port"`, `msg="starting"`} {
		if !strings.Contains(tb.fatal, want) {
			t.Errorf("failure message %q lacks %q", tb.fatal, want)
		}
	}
}

// Start learns the address from the log; Kill ends and reaps the process
// without reporting its expected "signal: killed" as a failure, and a
// second Kill is a no-op.
func TestStartAndKill(t *testing.T) {
	bin := script(t, `echo 'level=INFO msg="coffer serving" listen=127.0.0.1:7480' >&2
exec sleep 600
`)
	tb := &recordingTB{TB: t}
	p := start(tb, bin)
	if p == nil {
		t.Fatalf("Start failed: %s", tb.fatal)
	}
	if p.Addr != "127.0.0.1:7480" {
		t.Fatalf("Addr = %q", p.Addr)
	}
	p.Kill()
	if p.cmd.ProcessState == nil || p.cmd.ProcessState.Exited() {
		t.Fatalf("process state after Kill: %v", p.cmd.ProcessState)
	}
	p.Kill()
	if len(tb.errors) != 0 {
		t.Fatalf("Kill reported %q", tb.errors)
	}
}
