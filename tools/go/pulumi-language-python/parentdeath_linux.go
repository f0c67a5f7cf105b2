package main

import "syscall"

// parentDeathSignal has the kernel kill a host if this process dies without stopping it.
func parentDeathSignal() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
