package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"coffer/internal/clock"
)

// Config describes a benchmark run.
type Config struct {
	// RepoRoot is the root of the coffer module (builds coffer-direct,
	// locates mkdata).
	RepoRoot string
	// MkdataDir is the dataset generator; empty: DefaultMkdataDir.
	MkdataDir string
	// DataDir, when set, is an existing mkdata tree that is copied (cp -a)
	// into the work directory instead of generating one; the change step
	// mutates the copy, never DataDir.
	DataDir string
	Scale   float64 // mkdata -scale (1 = ~2 GiB)
	Seed    uint64  // mkdata -seed
	// ChangePct is mkdata mutate -pct for the change step.
	ChangePct float64
	Rounds    int
	// Budget, when positive, stops starting rounds once the next one would
	// probably end after Budget since the start (judged by the slowest round
	// so far); at least one round always runs.
	Budget time.Duration
	// WorkDir holds the dataset, repositories and restores; it must not
	// exist, or be empty. Empty: a new temporary directory.
	WorkDir string
	// Keep leaves the work directory in place.
	Keep bool
	// Tools are the names of the tools to compare (see ToolNames); the
	// first one is the subject of the ratio columns.
	Tools []string
	// ToolOptions.CofferBin and CofferServerBin, when empty, are built from
	// RepoRoot (for the tools that need them); ToolOptions.Source is set.
	ToolOptions ToolOptions
	// Baselines adds the cp -r and tar-read measurements (see Baselines).
	Baselines bool
	// VerifyWorkers hash files in parallel when verifying (default 2).
	VerifyWorkers int
	Clock         clock.Clock
	Logger        *slog.Logger
}

func (cfg *Config) normalize() error {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Rounds < 1 {
		return fmt.Errorf("rounds must be at least 1, not %d", cfg.Rounds)
	}
	if cfg.Budget < 0 {
		return fmt.Errorf("budget must not be negative, not %s", cfg.Budget)
	}
	if cfg.DataDir == "" && !(cfg.Scale > 0) {
		return fmt.Errorf("scale must be positive, not %g", cfg.Scale)
	}
	if !(cfg.ChangePct > 0 && cfg.ChangePct <= 100) {
		return fmt.Errorf("change percentage must be in (0, 100], not %g", cfg.ChangePct)
	}
	if len(cfg.Tools) == 0 {
		return errors.New("no tools to compare")
	}
	seen := map[string]bool{}
	for _, t := range cfg.Tools {
		if seen[t] {
			return fmt.Errorf("tool %q named twice", t)
		}
		seen[t] = true
	}
	if cfg.RepoRoot == "" {
		return errors.New("RepoRoot is required")
	}
	if cfg.DataDir != "" {
		abs, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return err
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return fmt.Errorf("-data %s is not a directory (%v)", abs, err)
		}
		cfg.DataDir = abs
	}
	if cfg.VerifyWorkers <= 0 {
		cfg.VerifyWorkers = 2
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func toolVersion(ctx context.Context, t Tool) string {
	v, ok := t.(Versioner)
	if !ok {
		return ""
	}
	s, err := v.Version(ctx)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return s
}

func settings(cfg Config, o ToolOptions) []string {
	var s []string
	if contains(cfg.Tools, "restic") {
		s = append(s, "restic: repository version 2, --compression "+orDefault(o.ResticCompression, "auto"))
	}
	if contains(cfg.Tools, "borg") {
		s = append(s, "borg: --encryption=repokey-blake2, --compression "+orDefault(o.BorgCompression, "zstd,1"))
	}
	if contains(cfg.Tools, "coffer") {
		s = append(s, "coffer: bench/cmd/coffer-direct (engine + fstree, local directory storage, default options)")
	}
	if contains(cfg.Tools, "coffer-api") {
		workers := "the server's default workers and memory limit"
		if o.APIWorkers > 0 {
			workers = fmt.Sprintf("workers: %d", o.APIWorkers)
		}
		s = append(s, fmt.Sprintf("coffer-api: `coffer serve` (one per round, %s) "+
			"driven with StartBackupJob / StartRestoreJob (to a new file system, renamed to the target unmeasured), jobs polled every %s; "+
			"time = Start call to the poll that sees COMPLETED; peak memory = server VmHWM (reset per operation through /proc/<pid>/clear_refs); "+
			"user/sys = the server's /proc/<pid>/stat deltas", workers, apiPoll))
	}
	s = append(s, fmt.Sprintf("machine: %d CPUs (GOMAXPROCS of the harness %d), %s/%s",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH))
	return s
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
