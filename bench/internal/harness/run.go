// Package harness runs the side-by-side benchmark: the same seeded dataset is
// backed up (initial, after a small change, without change) and restored by
// Coffer and by its peers (restic, borg), every operation in a child process
// whose wall time and peak RSS are measured, the tools alternating step by
// step. Every restore is verified against the source (SHA-256 of every file,
// sizes, modes, mtimes, symlink targets, hard links).
package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
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
