//go:build !linux

package pgdb

import "syscall"

func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
