package runtime

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// KillStray kills the processes that a job's tasks left behind and says how many it killed:
// every process of this user whose environment holds MAPFLOW_JOB_ID=jobID and each of the
// given KEY=VALUE pairs (MAPFLOW_TASK_INDEX=3, say), wherever it went: into a session of its
// own (setsid), or to init when its driver was killed. Only a process that rewrote its own
// environment escapes it. It never kills the calling process.
func KillStray(jobID string, pairs ...string) int {
	if jobID == "" {
		return 0
	}
	want := append([]string{"MAPFLOW_JOB_ID=" + jobID}, pairs...)
	dir, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	names, _ := dir.Readdirnames(-1)
	dir.Close()
	self := os.Getpid()
	killed := 0
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self || pid <= 1 {
			continue
		}
		env, err := os.ReadFile("/proc/" + name + "/environ")
		if err != nil || !hasAll(env, want) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed
}

// hasAll tells whether the NUL-separated environment env holds every entry of want.
func hasAll(env []byte, want []string) bool {
	for _, w := range want {
		found := false
		for _, e := range bytes.Split(env, []byte{0}) {
			if string(e) == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
