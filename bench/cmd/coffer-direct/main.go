// Command coffer-direct performs one Coffer engine operation on a local
// directory repository. The benchmark harness (bench/cmd/coffer-bench) runs
// it as a child process to time it and read its peak RSS.
//
//	coffer-direct init    -repo DIR
//	coffer-direct backup  -repo DIR -src DIR [-parent latest|none]
//	coffer-direct restore -repo DIR -dst DIR [-snapshot latest|ID]
//
// The 32-byte master key comes from the environment variable
// COFFER_BENCH_KEY (64 hex digits). On success a JSON summary is printed to
// stdout; diagnostics go to stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"
	"time"

	"coffer/bench/internal/cofferdirect"
	"coffer/internal/memlimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The same soft memory limit as `coffer serve` with one job worker.
	memlimit.Apply(memlimit.Default(1))
	err := runProfiled(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "coffer-direct:", err)
		os.Exit(1)
	}
}

// runProfiled is run with the optional CPU profile and execution trace,
// both stopped (and their files complete) before it returns, also when the
// operation failed or was interrupted.
func runProfiled(ctx context.Context) (err error) {
	var stops []func() error
	defer func() {
		// The profile and trace are stopped in reverse order; the first
		// failure to stop one is the result when the operation succeeded.
		for i := len(stops) - 1; i >= 0; i-- {
			if serr := stops[i](); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	for _, r := range []struct {
		env   string
		start func(io.Writer) error
		stop  func()
	}{
		{ProfileEnv, pprof.StartCPUProfile, pprof.StopCPUProfile},
		{TraceEnv, trace.Start, trace.Stop},
	} {
		stop, serr := startToFile(r.env, r.start, r.stop)
		if serr != nil {
			return serr
		}
		stops = append(stops, stop)
	}
	if p := os.Getenv(HeapProfileEnv); p != "" {
		stop := startPeakHeapProfile(p)
		stops = append(stops, stop)
	}
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// HeapProfileEnv names an environment variable that, when set, makes the
// operation write a heap profile to that file, taken when the heap in use
// was largest (sampled every 100 ms), and print the process's memory
// (VmHWM, RssAnon, RssFile, the runtime's heap and its released pages) to
// stderr at the end.
const HeapProfileEnv = "COFFER_BENCH_HEAPPROFILE"

// startPeakHeapProfile samples the heap every 100 ms and rewrites the
// profile at path whenever the heap in use reaches a new peak.
func startPeakHeapProfile(path string) func() error {
	done, stopped := make(chan struct{}), make(chan error, 1)
	go func() {
		var peak uint64
		var err error
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				status, _ := os.ReadFile("/proc/self/status")
				var lines []string
				for _, l := range strings.Split(string(status), "\n") {
					if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "Rss") {
						lines = append(lines, strings.Join(strings.Fields(l), " "))
					}
				}
				fmt.Fprintf(os.Stderr, "coffer-direct memory: %s; peak heap in use %d MiB; now heap in use %d MiB, sys %d MiB, released %d MiB, stacks %d MiB, GC cycles %d\n",
					strings.Join(lines, ", "), peak>>20, ms.HeapInuse>>20, ms.HeapSys>>20, ms.HeapReleased>>20, ms.StackSys>>20, ms.NumGC)
				stopped <- err
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse <= peak || err != nil {
					continue
				}
				peak = ms.HeapInuse
				var f *os.File
				if f, err = os.Create(path); err == nil {
					err = errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
				}
			}
		}
	}()
	return func() error { close(done); return <-stopped }
}

// ProfileEnv names an environment variable that, when set, makes the
// operation write a CPU profile to that file (for `go tool pprof`).
const ProfileEnv = "COFFER_BENCH_CPUPROFILE"

// TraceEnv names an environment variable that, when set, makes the
// operation write a runtime execution trace to that file (for `go tool
// trace`: where the workers wait).
const TraceEnv = "COFFER_BENCH_TRACE"

// startToFile starts a recorder (start/stop: a CPU profile or a trace)
// writing to the file the environment variable env names, if it is set, and
// returns the function that stops it and closes the file.
func startToFile(env string, start func(io.Writer) error, stop func()) (func() error, error) {
	path := os.Getenv(env)
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	return func() error {
		stop()
		return f.Close()
	}, nil
}

const usage = `usage:
  coffer-direct init    -repo DIR
  coffer-direct backup  -repo DIR -src DIR [-parent latest|none]
  coffer-direct restore -repo DIR -dst DIR [-snapshot latest|ID]
environment: ` + cofferdirect.KeyEnv + ` = master key, 64 hex digits;
  ` + ProfileEnv + ` = write a CPU profile to this file (optional);
  ` + TraceEnv + ` = write an execution trace to this file (optional)`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("coffer-direct "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", "", "repository directory")
	src := fs.String("src", "", "backup: source directory")
	parent := fs.String("parent", "latest", "backup: parent snapshot, latest (newest of the same source) or none")
	dst := fs.String("dst", "", "restore: target directory (must not exist)")
	snapshot := fs.String("snapshot", "latest", "restore: manifest ID or latest")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q\n%s", fs.Args(), usage)
	}
	if *repo == "" {
		return fmt.Errorf("-repo is required\n%s", usage)
	}
	key, err := cofferdirect.ParseKey(os.Getenv(cofferdirect.KeyEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", cofferdirect.KeyEnv, err)
	}
	cfg := cofferdirect.Config{
		RepoDir: *repo,
		Key:     key,
		Logger:  slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	// Reject flags that the chosen operation would silently ignore.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	allowed := map[string][]string{
		"init":    {"repo"},
		"backup":  {"repo", "src", "parent"},
		"restore": {"repo", "dst", "snapshot"},
	}[args[0]]
	if allowed == nil {
		return fmt.Errorf("unknown operation %q\n%s", args[0], usage)
	}
	for name := range set {
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return fmt.Errorf("-%s does not apply to %s", name, args[0])
		}
	}

	var out any
	switch args[0] {
	case "init":
		err = cofferdirect.Init(ctx, cfg)
		out = map[string]string{"repo": *repo}
	case "backup":
		if *src == "" {
			return errors.New("backup: -src is required")
		}
		var useParent bool
		switch *parent {
		case "latest":
			useParent = true
		case "none":
		default:
			return fmt.Errorf("backup: -parent must be latest or none, not %q", *parent)
		}
		out, err = cofferdirect.Backup(ctx, cfg, *src, useParent)
	case "restore":
		if *dst == "" {
			return errors.New("restore: -dst is required")
		}
		out, err = cofferdirect.Restore(ctx, cfg, *snapshot, *dst)
	}
	if out != nil {
		enc := json.NewEncoder(stdout)
		if encErr := enc.Encode(out); encErr != nil && err == nil {
			err = encErr
		}
	}
	return err
}
