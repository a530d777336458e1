package pgtest

import "syscall"

// sysProcAttr runs a child as cred (nil: as the caller) and kills it when
// the test process dies, so no server outlives a crashed test.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
