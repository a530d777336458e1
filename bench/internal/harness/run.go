// Package harness runs the side-by-side benchmark: the same seeded dataset is
// backed up (initial, after a small change, without change) and restored by
// Coffer and by its peers (restic, borg), every operation in a child process
// whose wall time and peak RSS are measured, the tools alternating step by
// step. Every restore is verified against the source (SHA-256 of every file,
// sizes, modes, mtimes, symlink targets, hard links).
package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"coffer/internal/clock"
)

// Op is a measured tool operation.
type Op int

// The measured operations, in the order a round performs them.
const (
	OpInitial Op = iota
	OpChange
	OpNoChange
	OpRestore
	numOps
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

// DatasetInfo describes the tree that was backed up.
type DatasetInfo struct {
	Source      string // "mkdata gen -seed 1 -scale 1" or the copied directory
	Files       int64
	Bytes       int64
	Scale       float64
	Seed        uint64
	ChangePct   float64
	ChangeBytes int64 // total size of the files that the first mutation changed or added
}

// Round holds the measurements of one round.
type Round struct {
	Order     []string                   // tool order of this round
	Samples   map[string]*[numOps]Sample // tool → op → sample
	Done      map[string]*[numOps]bool
	RepoSize  map[string]int64 // after the three backups
	Verify    map[string]Diff
	Failed    map[string]error // first failure of the tool in this round
	Baselines map[string]Sample
	// Paired is the first baseline (cp -r) measured right next to the
	// first tool's restore, in the same state of the machine: before it in
	// odd rounds (PairedBefore), after it in even ones. Its copy is one more
	// tree written before some peers' restores, like any tool's restore. The baselines at
	// the end of a round run after every tool's restore, when the page
	// cache holds several fresh trees; on these VMs that state alone moved
	// cp -r between 2.3 and 5.8 s.
	Paired       *Sample
	PairedBefore bool
}

// Results of a run.
type Results struct {
	Started   time.Time
	Finished  time.Time
	Tools     []string
	Versions  map[string]string
	Baselines []string
	Dataset   DatasetInfo
	Rounds    []Round
	Settings  []string // human-readable configuration lines
	// LoadStart and LoadEnd are /proc/loadavg's 1/5/15-minute averages
	// (empty where unavailable): a busy machine makes the numbers noise.
	LoadStart, LoadEnd string
	// StoppedEarly says why fewer rounds than asked for ran (Config.Budget).
	StoppedEarly string
	// Cleanup, when set, says that rounds' files were deleted between rounds
	// for lack of space (see keepRounds).
	Cleanup string
}

// Versioner is implemented by tools that can report their program version.
type Versioner interface {
	Version(ctx context.Context) (string, error)
}

// Run performs the benchmark. It returns the results gathered so far along
// with an error when a setup step fails; a failing tool operation does not
// stop the run (it is recorded in Round.Failed).
func Run(ctx context.Context, cfg Config) (res *Results, err error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	clk := cfg.Clock
	res = &Results{Started: clk.Now(), Tools: cfg.Tools, Versions: map[string]string{},
		Dataset: DatasetInfo{Scale: cfg.Scale, Seed: cfg.Seed, ChangePct: cfg.ChangePct}}
	res.LoadStart = loadAvg()
	defer func() { res.Finished, res.LoadEnd = clk.Now(), loadAvg() }()

	work, cleanup, err := prepareWorkDir(cfg.WorkDir)
	if err != nil {
		return res, err
	}
	defer func() {
		if cfg.Keep {
			log.Info("work directory kept", "dir", work)
			return
		}
		if e := cleanup(); e != nil && err == nil {
			err = e
		}
	}()
	bin := filepath.Join(work, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return res, err
	}

	// The dataset's path is fixed now; the tree is made below.
	data := filepath.Join(work, "data")

	// Tools first: a missing peer should fail before minutes of dataset work.
	topts := cfg.ToolOptions
	topts.Runner.Clock = clk
	topts.Logger = log
	topts.Source = data
	if topts.CofferBin == "" && contains(cfg.Tools, "coffer") {
		topts.CofferBin = filepath.Join(bin, "coffer-direct")
		log.Info("building coffer-direct")
		if err := BuildCoffer(ctx, cfg.RepoRoot, topts.CofferBin); err != nil {
			return res, err
		}
	}
	if topts.CofferServerBin == "" && contains(cfg.Tools, "coffer-api") {
		topts.CofferServerBin = filepath.Join(bin, "coffer")
		log.Info("building coffer")
		if err := BuildCofferServer(ctx, cfg.RepoRoot, topts.CofferServerBin); err != nil {
			return res, err
		}
	}
	tools := make([]Tool, 0, len(cfg.Tools))
	defer func() {
		for _, t := range tools {
			if e := t.Close(); e != nil && err == nil {
				err = fmt.Errorf("close %s: %w", t.Name(), e)
			}
		}
	}()
	for _, name := range cfg.Tools {
		t, err := NewTool(name, topts)
		if err != nil {
			return res, err
		}
		tools = append(tools, t)
		res.Versions[name] = toolVersion(ctx, t)
	}
	var baselines []Baseline
	if cfg.Baselines {
		if baselines, err = Baselines(topts.Runner); err != nil {
			return res, err
		}
		for _, b := range baselines {
			res.Baselines = append(res.Baselines, b.Name())
		}
	}
	res.Settings = settings(cfg, topts)

	// Dataset.
	mkdataDir, err := LocateMkdata(cfg.RepoRoot, cfg.MkdataDir)
	if err != nil {
		return res, err
	}
	mkdata := filepath.Join(bin, "mkdata")
	log.Info("building mkdata", "dir", mkdataDir)
	if err := BuildMkdata(ctx, mkdataDir, mkdata); err != nil {
		return res, err
	}
	if cfg.DataDir != "" {
		log.Info("copying dataset", "from", cfg.DataDir)
		if _, err := runQuiet(ctx, work, "cp", "-a", cfg.DataDir, data); err != nil {
			return res, err
		}
		res.Dataset.Source = "a copy of the -data tree " + filepath.Base(cfg.DataDir)
	} else {
		log.Info("generating dataset", "scale", cfg.Scale, "seed", cfg.Seed)
		if _, err := runQuiet(ctx, work, mkdata, "gen", "-out", data,
			"-seed", strconv.FormatUint(cfg.Seed, 10), "-scale", strconv.FormatFloat(cfg.Scale, 'g', -1, 64)); err != nil {
			return res, err
		}
		res.Dataset.Source = fmt.Sprintf("mkdata gen -seed %d -scale %g", cfg.Seed, cfg.Scale)
	}

	var slowest time.Duration
	for r := 0; r < cfg.Rounds; r++ {
		if elapsed := clk.Now().Sub(res.Started); r > 0 && cfg.Budget > 0 && elapsed+slowest > cfg.Budget {
			res.StoppedEarly = fmt.Sprintf("stopped after %d of %d rounds: another round (up to %s) would exceed the %s budget",
				r, cfg.Rounds, slowest.Round(time.Second), cfg.Budget)
			log.Warn(res.StoppedEarly)
			break
		}
		log.Info("round", "n", r+1, "of", cfg.Rounds)
		start := clk.Now()
		round, err := runRound(ctx, cfg, r, work, data, mkdata, tools, baselines, res)
		if round != nil {
			res.Rounds = append(res.Rounds, *round)
		}
		if err != nil {
			return res, fmt.Errorf("round %d: %w", r+1, err)
		}
		slowest = max(slowest, clk.Now().Sub(start))
		switch {
		case cfg.Keep || r+1 == cfg.Rounds:
		case res.Cleanup != "":
			// Once short of space, every later round is deleted too, so the
			// report's note stays true.
			if err := removeAll(roundDir(work, r)); err != nil {
				log.Warn("cleanup", "err", err)
			}
		default:
			res.Cleanup = keepRounds(work, r, cfg.Rounds-r-1, freeSpace, log)
		}
	}
	return res, nil
}

// freeSpace returns the bytes available to this user on dir's file system.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

func roundDir(work string, r int) string {
	return filepath.Join(work, "rounds", strconv.Itoa(r+1))
}

// keepRounds decides after round r whether the rounds' directories can stay
// until the run ends. They stay when the file system has room for the
// remaining rounds: on ext4 without a journal (these VMs) every inode
// allocation skips inodes deleted in the last 60-300 s (recently_deleted),
// so deleting a round's 150,000 files made the next round's restores and
// `cp -r` pay 2-3x their system time, unequally by their order. Otherwise
// the rounds so far are removed and the returned note says so (for the
// report).
func keepRounds(work string, r, remaining int, freeSpace func(string) (int64, error), log *slog.Logger) string {
	used, err := TreeSize(roundDir(work, r))
	if err != nil {
		log.Warn("size of round directory", "err", err)
		return ""
	}
	free, err := freeSpace(work)
	if err != nil {
		log.Warn("free space", "err", err)
		return ""
	}
	const margin = 4 << 30
	if free >= used*int64(remaining)+margin {
		return ""
	}
	note := fmt.Sprintf("from round %d on, each round's files were deleted after it (%.1f GiB free, %d rounds of %.1f GiB to go), so later rounds' restores ran right after a mass deletion", r+2,
		float64(free)/(1<<30), remaining, float64(used)/(1<<30))
	log.Warn(note)
	for i := 0; i <= r; i++ {
		if err := removeAll(roundDir(work, i)); err != nil {
			log.Warn("cleanup", "err", err)
		}
	}
	return note
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
		s = append(s, fmt.Sprintf("coffer-api: `coffer serve` (one per round, workers: 1, hence the 128 MiB soft memory limit of coffer-direct) "+
			"driven with StartBackupJob / StartRestoreJob (to a new file system, renamed to the target unmeasured), jobs polled every %s; "+
			"time = Start call to the poll that sees COMPLETED; peak memory = server VmHWM (reset per operation through /proc/<pid>/clear_refs); "+
			"user/sys = the server's /proc/<pid>/stat deltas", apiPoll))
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

// prepareWorkDir creates (or checks) the work directory and returns a
// function removing what the run created.
func prepareWorkDir(dir string) (string, func() error, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "coffer-bench-")
		if err != nil {
			return "", nil, err
		}
		return d, func() error { return removeAll(d) }, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	entries, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return "", nil, err
		}
		return abs, func() error { return removeAll(abs) }, nil
	case err != nil:
		return "", nil, err
	case len(entries) > 0:
		return "", nil, fmt.Errorf("work directory %s is not empty", abs)
	}
	return abs, func() error {
		for _, name := range []string{"bin", "data", "rounds"} {
			if err := removeAll(filepath.Join(abs, name)); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// rotate returns tools starting at index r mod len, so that no tool always
// runs first (or right after the same neighbour) across rounds.
func rotate(tools []Tool, r int) []Tool {
	n := len(tools)
	out := make([]Tool, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, tools[(r+i)%n])
	}
	return out
}

func runRound(ctx context.Context, cfg Config, r int, work, data, mkdata string, tools []Tool, baselines []Baseline, res *Results) (*Round, error) {
	log := cfg.Logger.With("round", r+1)
	order := rotate(tools, r)
	round := &Round{Samples: map[string]*[numOps]Sample{}, Done: map[string]*[numOps]bool{},
		RepoSize: map[string]int64{}, Verify: map[string]Diff{}, Failed: map[string]error{},
		Baselines: map[string]Sample{}}
	for _, t := range order {
		round.Order = append(round.Order, t.Name())
		round.Samples[t.Name()] = &[numOps]Sample{}
		round.Done[t.Name()] = &[numOps]bool{}
	}
	dir := roundDir(work, r)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return round, err
	}
	// The round's directory stays until the run ends (see keepRounds).
	// Servers stop at the end of the round, before the run (or keepRounds)
	// removes their directories.
	defer func() {
		for _, t := range order {
			if err := t.Close(); err != nil {
				log.Error("close", "tool", t.Name(), "err", err)
				if round.Failed[t.Name()] == nil {
					round.Failed[t.Name()] = fmt.Errorf("close: %w", err)
				}
			}
		}
	}()
	for _, t := range order {
		td := filepath.Join(dir, t.Name())
		if err := os.Mkdir(td, 0o755); err != nil {
			return round, err
		}
		if err := t.Init(ctx, td); err != nil {
			round.Failed[t.Name()] = fmt.Errorf("init: %w", err)
			log.Error("tool failed", "tool", t.Name(), "err", err)
		}
	}

	measure := func(op Op, t Tool, f func() (Sample, error)) {
		name := t.Name()
		if round.Failed[name] != nil {
			return
		}
		syscall.Sync() // the previous tool's writeback is not charged to this one
		s, err := f()
		if err != nil {
			round.Failed[name] = fmt.Errorf("%s: %w", opLabel(op, cfg.ChangePct), err)
			log.Error("tool failed", "tool", name, "op", opLabel(op, cfg.ChangePct), "err", err)
			return
		}
		round.Samples[name][op], round.Done[name][op] = s, true
		log.Info("measured", "tool", name, "op", opLabel(op, cfg.ChangePct),
			"wall", s.Wall.Round(time.Millisecond), "maxrss_mib", s.MaxRSS>>20)
	}
	backupStep := func(op Op) error {
		for _, t := range order {
			// Warm the tree right before each tool, not once per step: the
			// project VMs page out memory idle for about a minute (a DAMON
			// pageout scheme), and after borg's 30 s backup the next tool
			// found the tree partly evicted (coffer 18 s instead of 11 s).
			if _, err := WarmTree(ctx, data); err != nil {
				return err
			}
			measure(op, t, func() (Sample, error) { return t.Backup(ctx, data) })
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	}

	if err := backupStep(OpInitial); err != nil {
		return round, err
	}
	var before Tree
	if r == 0 {
		// Needed only to report how much the mutation changed.
		var err error
		if before, err = ScanTree(ctx, data, cfg.VerifyWorkers); err != nil {
			return round, err
		}
		res.Dataset.Files, res.Dataset.Bytes = before.Files()
	}
	log.Info("mutating dataset", "pct", cfg.ChangePct, "gen", r+1)
	if _, err := runQuiet(ctx, work, mkdata, "mutate", "-dir", data, "-seed", strconv.FormatUint(cfg.Seed, 10),
		"-gen", strconv.Itoa(r+1), "-pct", strconv.FormatFloat(cfg.ChangePct, 'g', -1, 64)); err != nil {
		return round, err
	}
	if err := backupStep(OpChange); err != nil {
		return round, err
	}
	if err := backupStep(OpNoChange); err != nil {
		return round, err
	}
	for _, t := range order {
		if round.Failed[t.Name()] != nil {
			continue
		}
		n, err := TreeSize(t.RepoDir())
		if err != nil {
			return round, err
		}
		round.RepoSize[t.Name()] = n
	}

	log.Info("hashing the source for restore verification")
	src, err := ScanTree(ctx, data, cfg.VerifyWorkers)
	if err != nil {
		return round, err
	}
	if before != nil {
		res.Dataset.ChangeBytes = changedBytes(before, src)
	}
	paired := func() error {
		if len(baselines) == 0 {
			return nil
		}
		if _, err := WarmTree(ctx, data); err != nil {
			return err
		}
		syscall.Sync()
		s, err := baselines[0].Run(ctx, data, filepath.Join(dir, "baseline-paired"))
		if err != nil {
			return err
		}
		round.Paired, round.PairedBefore = &s, r%2 == 0
		log.Info("measured", "baseline", baselines[0].Name(), "next to", tools[0].Name(), "wall", s.Wall.Round(time.Millisecond))
		return nil
	}
	for _, t := range order {
		name := t.Name()
		if round.Failed[name] != nil {
			continue
		}
		if name == tools[0].Name() && r%2 == 0 {
			if err := paired(); err != nil {
				return round, err
			}
		}
		if _, err := WarmTree(ctx, t.RepoDir()); err != nil {
			return round, err
		}
		dst := filepath.Join(dir, "restore-"+name)
		measure(OpRestore, t, func() (Sample, error) { return t.Restore(ctx, dst) })
		if name == tools[0].Name() && r%2 == 1 {
			if err := paired(); err != nil {
				return round, err
			}
		}
		if round.Done[name][OpRestore] {
			got, err := ScanTree(ctx, dst, cfg.VerifyWorkers)
			if err != nil {
				round.Failed[name] = fmt.Errorf("verify restore: %w", err)
			} else {
				d := Compare(src, got)
				round.Verify[name] = d
				if d.OK() {
					log.Info("restore verified", "tool", name)
				} else {
					log.Error("RESTORE VERIFICATION FAILED", "tool", name, "summary", d.Summary(),
						"examples", strings.Join(d.Examples, "; "))
				}
			}
		}
		// The restored tree stays until the round ends: deleting it here
		// would make the next tool pay for the file system's deferred work
		// (journal, discard), an advantage for whoever restores first.
		if err := ctx.Err(); err != nil {
			return round, err
		}
	}

	for i, b := range baselines {
		if _, err := WarmTree(ctx, data); err != nil {
			return round, err
		}
		dst := filepath.Join(dir, "baseline-"+strconv.Itoa(i+1))
		syscall.Sync()
		s, err := b.Run(ctx, data, dst)
		if err != nil {
			return round, err
		}
		round.Baselines[b.Name()] = s
		log.Info("measured", "baseline", b.Name(), "wall", s.Wall.Round(time.Millisecond))
	}
	return round, nil
}

// changedBytes is the size of the regular files of after that are new or
// whose content differs from before.
func changedBytes(before, after Tree) int64 {
	var n int64
	for p, e := range after {
		if e.Kind != KindFile {
			continue
		}
		if b, ok := before[p]; !ok || b.Kind != KindFile || b.Sum != e.Sum {
			n += e.Size
		}
	}
	return n
}
