package pgdb

import "syscall"

// childAttr makes client programs die with Coffer (a killed server leaves
// no pg_dump or pg_restore running).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
