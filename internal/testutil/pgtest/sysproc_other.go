//go:build !linux

package pgtest

import "syscall"

// sysProcAttr runs a server program as cred (nil: as the caller).
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
