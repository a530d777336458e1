// Command coffer-bench times Coffer against restic and borg on the same
// seeded dataset and prints a markdown table (see bench/README.md):
//
//	go run ./bench/cmd/coffer-bench -scale 1 -rounds 1 -out bench-result.md
//
// It exits with status 1 when a tool failed or a restore did not give back
// the source data, after printing the table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"coffer/bench/internal/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("coffer-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		scale      = fs.Float64("scale", 1, "mkdata -scale of the generated dataset (1 = ~2 GiB)")
		seed       = fs.Uint64("seed", 1, "mkdata -seed")
		pct        = fs.Float64("pct", 1, "percentage of bytes the change step rewrites (mkdata mutate -pct)")
		rounds     = fs.Int("rounds", 1, "rounds to run; the table shows medians")
		budget     = fs.Duration("budget", 0, "stop starting rounds when the next one would probably end after this long (0: no limit)")
		tools      = fs.String("tools", strings.Join(harness.DefaultTools, ","), "comma-separated tools ("+strings.Join(harness.ToolNames, ", ")+"); the first is compared with the others")
		data       = fs.String("data", "", "existing mkdata tree to copy (cp -a) instead of generating one; it is never modified")
		mkdata     = fs.String("mkdata", "", "mkdata generator directory (default: "+harness.DefaultMkdataDir+" from the repository root)")
		work       = fs.String("work", "", "work directory (must be empty or absent; default: a new temporary directory)")
		keep       = fs.Bool("keep", false, "keep the work directory")
		out        = fs.String("out", "", "also write the markdown report to this file")
		cofferBin  = fs.String("coffer-bin", "", "coffer-direct executable (default: built from this checkout)")
		serverBin  = fs.String("coffer-server-bin", "", "coffer executable that the coffer-api tool runs as a server (default: built from this checkout)")
		resticC    = fs.String("restic-compression", "auto", "restic --compression")
		borgC      = fs.String("borg-compression", "zstd,1", "borg create --compression")
		apiWorkers = fs.Int("api-workers", 0, "coffer-api: the server's job workers (0: its default, which also sets its default memory limit)")
		baselines  = fs.Bool("baselines", true, "also time cp -r (as is and with --reflink=never) and tar reading the tree")
		verbose    = fs.Bool("v", false, "log debug output and the tools' stderr")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "coffer-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	level := slog.LevelInfo
	var childErr io.Writer
	if *verbose {
		level, childErr = slog.LevelDebug, stderr
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(stderr, "coffer-bench:", err)
		return 1
	}
	root, err := harness.FindModuleRoot(wd)
	if err != nil {
		fmt.Fprintln(stderr, "coffer-bench: run it from inside the coffer checkout:", err)
		return 1
	}
	cfg := harness.Config{
		RepoRoot: root, MkdataDir: *mkdata, DataDir: *data,
		Scale: *scale, Seed: *seed, ChangePct: *pct, Rounds: *rounds, Budget: *budget,
		WorkDir: *work, Keep: *keep, Tools: splitList(*tools), Baselines: *baselines,
		ToolOptions: harness.ToolOptions{
			Runner:    harness.Runner{Verbose: childErr},
			CofferBin: *cofferBin, CofferServerBin: *serverBin, ResticCompression: *resticC, BorgCompression: *borgC,
			APIWorkers: *apiWorkers,
		},
		Logger: logger,
	}
	res, err := harness.Run(ctx, cfg)
	if res != nil && len(res.Rounds) > 0 {
		if werr := report(res, stdout, *out); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "coffer-bench:", err)
		return 1
	}
	if res.VerificationFailed() {
		fmt.Fprintln(stderr, "coffer-bench: !!! a tool failed or a restore did not match the source; see the report")
		return 1
	}
	return 0
}

func report(res *harness.Results, stdout io.Writer, out string) error {
	if err := res.WriteMarkdown(stdout); err != nil {
		return err
	}
	if out == "" {
		return nil
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := res.WriteMarkdown(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
