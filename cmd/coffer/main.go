// Command coffer is the Coffer backup service and its command-line client.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"coffer/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal starts a bounded shutdown; a second one ends the
	// process at once (default signal handling is restored).
	go func() { <-ctx.Done(); stop() }()
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// dispatch sends the client subcommands (and their global flags) to
// internal/cli and everything else (serve, help) to run.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "vaults", a == "backup", a == "restore", a == "jobs", a == "recovery-points", a == "ls", a == "plans",
			strings.HasPrefix(a, "--endpoint-url"), strings.HasPrefix(a, "--data-dir"):
			return cli.Run(ctx, args, stdout, stderr, os.Getenv)
		case a == "help", a == "-h", a == "--help":
			code := run(ctx, args, stdout, stderr)
			_, _ = io.WriteString(stdout, cli.Usage+"\n")
			return code
		}
	}
	return run(ctx, args, stdout, stderr)
}
