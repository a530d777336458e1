// Package cofferproc runs `coffer serve` as a child process for crash tests:
// build the binary, start it, learn its listen address from its log, and
// kill it with SIGKILL.
package cofferproc

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
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
	cmd *exec.Cmd
	// Addr is the host:port it listens on.
	Addr string
}

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
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addrc <- m[1]
				sent = true
			}
		}
		if !sent {
			close(addrc)
		}
	}()
	addr, ok := <-addrc
	if !ok {
		cmd.Wait()
		tb.Fatal("coffer serve exited before listening")
	}
	p := &Proc{cmd: cmd, Addr: addr}
	tb.Cleanup(p.Kill)
	return p
}

// Kill sends SIGKILL (no clean shutdown) and reaps the process.
func (p *Proc) Kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}
