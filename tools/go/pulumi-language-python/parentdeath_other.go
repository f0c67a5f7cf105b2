//go:build !linux

package main

import "syscall"

// parentDeathSignal: only Linux offers it; elsewhere a host outlives a killed shim until its own
// health check finds the engine gone.
func parentDeathSignal() *syscall.SysProcAttr {
	return nil
}
