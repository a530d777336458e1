package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"coffer/internal/cli"
)

// TestDispatchClientCommands: every command the client's usage lists is
// sent to the client (`coffer plans` answered "unknown command" when the
// client had it but dispatch did not route it).
func TestDispatchClientCommands(t *testing.T) {
	_, cmds, ok := strings.Cut(cli.Usage, "Commands:\n")
	if !ok {
		t.Fatal("no Commands: section in the client usage")
	}
	cmds, _, _ = strings.Cut(cmds, "\n\n")
	seen := map[string]bool{}
	for _, line := range strings.Split(cmds, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") || seen[f[0]] {
			continue // continuation lines are indented further
		}
		seen[f[0]] = true
		var stdout, stderr bytes.Buffer
		// An endpoint nothing listens on: the client fails to connect (or
		// on its own flags), but never as an unknown server command.
		dispatch(context.Background(), []string{f[0], "--endpoint-url", "http://127.0.0.1:1"}, &stdout, &stderr)
		if out := stdout.String() + stderr.String(); strings.Contains(out, "unknown command") {
			t.Errorf("%s: not routed to the client: %s", f[0], out)
		}
	}
	if !seen["plans"] || len(seen) < 6 {
		t.Fatalf("commands found in the usage: %v", seen)
	}
}
