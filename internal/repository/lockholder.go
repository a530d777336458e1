package repository

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
)

// procIdentity names a process precisely enough that another process on
// the same machine can tell whether it still runs: the kernel's boot id,
// the pid namespace, the pid and the process's start time (in clock ticks
// since boot, so a recycled pid is told apart). Empty fields mean unknown
// (no /proc): such a holder is never judged dead.
type procIdentity struct {
	Host   string
	BootID string
	PIDNS  string
	PID    int
	Start  uint64
}

var selfIdentity = sync.OnceValue(func() procIdentity {
	var id procIdentity
	id.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		id.BootID = strings.TrimSpace(string(b))
	}
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		id.PIDNS = ns
	}
	id.PID = os.Getpid()
	if s, err := procStart(id.PID); err == nil {
		id.Start = s
	}
	return id
})

// procStart returns the start time of process pid (field 22 of
// /proc/<pid>/stat); a process that does not exist is fs.ErrNotExist.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
	// the fields start after the last ')'. state is field 3, starttime 22.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("unexpected /proc stat format")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// holderDead reports whether the lock's holder is provably gone: it ran on
// this machine (host name and boot id) in this boot and in this pid namespace, and no process with
// its pid and start time exists any more (killed, crashed, or exited
// without releasing). Anything less certain — another machine, another
// container's pid namespace, a lock written before holders recorded their
// identity, an unreadable /proc — is not proof, and the lock then only ends
// when its lease expires.
func holderDead(li LockInfo) bool {
	if li.BootID == "" || li.PIDNS == "" || li.PID <= 0 || li.Start == 0 {
		return false
	}
	me := selfIdentity()
	if me.BootID == "" || me.PIDNS == "" || me.BootID != li.BootID || me.PIDNS != li.PIDNS ||
		!strings.HasPrefix(li.Holder, me.Host+" pid ") {
		return false
	}
	start, err := procStart(li.PID)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	return start != li.Start
}
