// Package cofferproc runs `coffer serve` as a child process for crash tests:
// build the binary, start it, learn its listen address from its log, and
// kill it with SIGKILL (or stop it with SIGTERM and wait for its exit).
package cofferproc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles cmd/coffer into a temporary directory and returns the path.
func Build(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "coffer")
	if out, err := exec.Command("go", "build", "-o", bin, "coffer/cmd/coffer").CombinedOutput(); err != nil {
		tb.Fatalf("go build coffer: %v\n%s", err, out)
	}
	return bin
}

// Proc is a running `coffer serve`.
type Proc struct {
	tb  testing.TB
	cmd *exec.Cmd
	// Addr is the host:port it listens on.
	Addr string

	done    chan struct{} // closed when the process has exited and was reaped
	waitErr error         // what Wait returned
	mu      sync.Mutex
	log     bytes.Buffer // everything the process wrote to stderr
}

var servingRE = regexp.MustCompile(`msg="coffer serving" listen=(\S+)`)

// Start runs `bin serve --config cfg` and waits until it listens. The
// process is killed at the end of the test if it still runs.
func Start(tb testing.TB, bin, cfg string) *Proc {
	tb.Helper()
	return StartWith(tb, bin, cfg, Options{})
}

// Options change how the process is started.
type Options struct {
	// Credential runs the process as another user (root bypasses
	// permission checks, so permission tests run the server unprivileged).
	Credential *syscall.Credential
	// Dir is the working directory ("" : the test's).
	Dir string
}

// StartWith is Start with options.
func StartWith(tb testing.TB, bin, cfg string, o Options) *Proc {
	tb.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Dir = o.Dir
	if o.Credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.Credential}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &Proc{tb: tb, cmd: cmd, done: make(chan struct{})}
	addrc := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingRE.FindStringSubmatch(line); m != nil && !sent {
				addrc <- m[1]
				sent = true
			}
		}
		if !sent {
			close(addrc)
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		// Wait must not run before the pipe has been read to its end.
		<-readDone
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	addr, ok := <-addrc
	if !ok {
		<-p.done
		tb.Fatalf("coffer serve exited before listening (%v); its log:\n%s", p.waitErr, p.Log())
	}
	p.Addr = addr
	tb.Cleanup(p.Kill)
	return p
}

// Kill sends SIGKILL (no clean shutdown) and reaps the process. A process
// that already exited is only reaped; failing to signal or reap it fails the
// test.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.tb.Errorf("kill coffer serve: %v", err)
	}
	<-p.done
	// Wait reports how the process ended ("signal: killed", or its own exit
	// status) as an *exec.ExitError; any other error is a failure to reap.
	var exit *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &exit) {
		p.tb.Errorf("reap coffer serve: %v", p.waitErr)
	}
}

// Signal sends sig to the process (e.g. syscall.SIGTERM).
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits up to d for the process to exit and reports whether it did.
// It is a bounded wait for tests, not a timing measurement.
func (p *Proc) Wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// ExitCode is the process's exit code (-1 while it runs or when a signal
// ended it).
func (p *Proc) ExitCode() int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Log returns what the process has written to stderr so far (its slog
// lines).
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}
