// Package cofferproc runs `coffer serve` as a child process for crash tests:
// build the binary, start it, learn its listen address from its log, and
// kill it with SIGKILL.
package cofferproc

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
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
}

// earlyLines is how many stderr lines before the listen line Start keeps
// to explain a process that exits before listening.
const earlyLines = 20

var servingRE = regexp.MustCompile(`msg="coffer serving" listen=(\S+)`)

// Start runs `bin serve --config cfg` and waits until it listens. The
// process is killed at the end of the test if it still runs.
func Start(tb testing.TB, bin, cfg string) *Proc {
	tb.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	addrc := make(chan string, 1)
	// early holds the last stderr lines before the listen line; Start reads
	// it only after the reader closed addrc (the reader is done with it).
	var early []string
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() { // drain to the end so the child never blocks on stderr
			if sent {
				continue
			}
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
				sent = true
				continue
			}
			early = append(early, sc.Text())
			if len(early) > earlyLines {
				early = early[1:]
			}
		}
		if !sent {
			close(addrc)
		}
	}()
	addr, ok := <-addrc
	if !ok {
		err := cmd.Wait()
		tb.Fatalf("coffer serve exited before listening (%v); its last log lines:\n%s", err, strings.Join(early, "\n"))
	}
	p := &Proc{tb: tb, cmd: cmd, Addr: addr}
	tb.Cleanup(p.Kill)
	return p
}

// Kill sends SIGKILL (no clean shutdown) and reaps the process. A process
// that already exited is only reaped; failing to signal or reap it fails the
// test.
func (p *Proc) Kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.tb.Errorf("kill coffer serve: %v", err)
	}
	// Wait reports how the process ended ("signal: killed", or its own exit
	// status) as an *exec.ExitError; any other error is a failure to reap.
	var exit *exec.ExitError
	if err := p.cmd.Wait(); err != nil && !errors.As(err, &exit) {
		p.tb.Errorf("reap coffer serve: %v", err)
	}
}
