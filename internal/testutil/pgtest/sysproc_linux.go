package pgtest

import "syscall"

// sysProcAttr runs a server program as cred (nil: as the caller), in a
// process group of its own (a terminal's Ctrl-C goes to the test, which
// stops the server), and kills it if the test process dies first.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
