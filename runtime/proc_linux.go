package runtime

import "syscall"

// newProcAttr puts a task's program in a process group of its own, so that a timeout or a
// cancel can kill it together with every process it started, and has the kernel kill it if
// the driver dies (kill -9) before it ends.
func newProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
