package harness

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

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
