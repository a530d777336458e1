package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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
