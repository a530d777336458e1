package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat times (USER_HZ, 100 on
// every Linux architecture Coffer builds for).
const clockTick = 10 * time.Millisecond

// procTimes reads a process's CPU time from /proc/<pid>/stat: its own
// (utime + stime) and that of its children it has waited for (cutime +
// cstime), and its parent's pid.
func procTimes(pid int) (self, children time.Duration, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var v [5]int64
	for k, idx := range []int{1, 11, 12, 13, 14} {
		if v[k], err = strconv.ParseInt(string(f[idx]), 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return time.Duration(v[1]+v[2]) * clockTick, time.Duration(v[3]+v[4]) * clockTick, int(v[0]), nil
}

// treeCPU is a snapshot of the CPU time of a process and its children.
type treeCPU struct {
	total time.Duration         // the process's own and its reaped children's
	kids  map[int]time.Duration // own time of each live child
}

// readTree reads the CPU time of pid and of its live children.
func readTree(pid int) (treeCPU, error) {
	self, children, _, err := procTimes(pid)
	if err != nil {
		return treeCPU{}, err
	}
	t := treeCPU{total: self + children, kids: map[int]time.Duration{}}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cpid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || cpid == pid {
			continue
		}
		s, _, ppid, err := procTimes(cpid)
		if err != nil || ppid != pid {
			continue // gone, or not a child
		}
		t.kids[cpid] = s
	}
	return t, nil
}

// since is the CPU time the tree used from before to t: the process's
// own and reaped children's growth plus the live children's growth (all
// of it for children started since). A child that existed before and was
// reaped since counts whole; long-lived children (PostgreSQL's background
// processes) are not reaped while the server runs.
func (t treeCPU) since(before treeCPU) time.Duration {
	d := t.total - before.total
	for pid, s := range t.kids {
		d += s - before.kids[pid]
	}
	return d
}

// cpuMeter measures the CPU time of one process tree over a step.
type cpuMeter struct {
	pid    int
	before treeCPU
}

func startCPU(pid int) (*cpuMeter, error) {
	t, err := readTree(pid)
	if err != nil {
		return nil, err
	}
	return &cpuMeter{pid: pid, before: t}, nil
}

// stop waits (up to 10 s) until the children started during the step
// have exited and been reaped (a backend ends a moment after its client),
// so that their time is in the parent's, then returns the step's CPU time.
func (m *cpuMeter) stop() (time.Duration, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		t, err := readTree(m.pid)
		if err != nil {
			return 0, err
		}
		newKids := false
		for pid := range t.kids {
			if _, ok := m.before.kids[pid]; !ok {
				newKids = true
			}
		}
		if !newKids || time.Now().After(deadline) {
			return t.since(m.before), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdCPU is the CPU time of a finished command, its waited-for
// descendants included.
func cmdCPU(cmd *exec.Cmd) time.Duration {
	if cmd.ProcessState == nil {
		return 0
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}
