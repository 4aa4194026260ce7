//go:build unix && !linux

package runtime

import "syscall"

// newProcAttr puts a task's program in a process group of its own, so that a timeout or a
// cancel can kill it together with every process it started.
func newProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
