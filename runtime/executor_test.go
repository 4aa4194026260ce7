package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mapflow/mapflow/lang"
)

// events collects what an executor reports.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) Report(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) kinds() []EventKind {
	var ks []EventKind
	for _, ev := range e.all {
		ks = append(ks, ev.Kind)
	}
	return ks
}

func (e *events) final(t *testing.T) *Result {
	t.Helper()
	var res *Result
	for _, ev := range e.all {
		if ev.Kind == TaskFinished {
			if res != nil {
				t.Fatalf("two TaskFinished events")
			}
			res = ev.Result
		}
	}
	if res == nil {
		t.Fatalf("no TaskFinished event in %v", e.kinds())
	}
	return res
}

func runSh(t *testing.T, job *lang.Job, script string, args ...string) (*events, *Result) {
	t.Helper()
	if job == nil {
		job = &lang.Job{Name: "j"}
	}
	e := &Executor{Job: job, Host: "h", WorkRoot: t.TempDir(), MaxOutput: 4096}
	var evs events
	argv := append([]string{"sh", "-c", script, "sh"}, args...)
	e.RunCommand(context.Background(), &lang.Command{Args: argv}, Task{Index: 3, Name: "f-3"}, &evs)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return &evs, evs.final(t)
}

func TestExecResult(t *testing.T) {
	for _, c := range []struct {
		script string
		want   any
		json   string
	}{
		{`echo 1; echo '{"a": [1, 2]}'; echo`, map[string]any{"a": []any{1, 2}}, `{"a":[1,2]}`},
		{`echo hello world`, "hello world", `"hello world"`},
		{`true`, nil, `null`},
		{`printf 40`, 40, `40`},
	} {
		_, res := runSh(t, nil, c.script)
		if res.Status != Completed || string(res.ValueJSON) != c.json {
			t.Errorf("%s: %s %s %q", c.script, res.Status, res.Message, res.ValueJSON)
		}
		if res.ExitCode == nil || *res.ExitCode != 0 || res.Host != "h" || res.Attempt != 1 {
			t.Errorf("%s: exit code %v host %q attempt %d", c.script, res.ExitCode, res.Host, res.Attempt)
		}
	}
}

func TestExecEnvironmentAndArgs(t *testing.T) {
	_, res := runSh(t, &lang.Job{Name: "myjob"}, `printf '%s|' "$1" "$MAPFLOW_TASK_INDEX" "$MAPFLOW_TASK_NAME" "$MAPFLOW_ATTEMPT" "$MAPFLOW_JOB"; pwd`, "; touch PWNED")
	out := string(res.Stdout)
	if !strings.HasPrefix(out, "; touch PWNED|3|f-3|1|myjob|") {
		t.Errorf("stdout %q", out)
	}
	if _, err := os.Stat("PWNED"); err == nil {
		t.Errorf("PWNED was created")
	}
	dir := strings.TrimSpace(out[strings.LastIndex(out, "|")+1:])
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("attempt directory %s left behind after Close (%v)", dir, err)
	}
}

func TestExecFailure(t *testing.T) {
	_, res := runSh(t, nil, `for i in $(seq 1 30); do echo "line $i" >&2; done; exit 3`)
	if res.Status != Failed || res.Exception != "ExitError" || res.Message != "exit status 3" || res.ExitCode == nil || *res.ExitCode != 3 {
		t.Fatalf("got %s %s %q %v", res.Status, res.Exception, res.Message, res.ExitCode)
	}
	if !strings.HasPrefix(res.Traceback, "line 11\n") || !strings.HasSuffix(res.Traceback, "line 30") {
		t.Errorf("traceback %q", res.Traceback)
	}
	_, res = runSh(t, nil, `kill -9 $$`)
	if res.Exception != "ExitError" || res.Message != "killed by signal 9" {
		t.Errorf("signal: %s %q", res.Exception, res.Message)
	}
}

func TestExecNotFound(t *testing.T) {
	e := &Executor{Job: &lang.Job{}, WorkRoot: t.TempDir()}
	for _, prog := range []string{"no-such-program-mapflow", "./missing.sh"} {
		var evs events
		e.RunCommand(context.Background(), &lang.Command{Args: []string{prog}}, Task{Name: "f-0"}, &evs)
		if res := evs.final(t); res.Exception != "FileNotFoundError" {
			t.Errorf("%s: %s %s", prog, res.Exception, res.Message)
		}
	}
}

func TestExecRetries(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "n")
	job := &lang.Job{Retries: 3}
	evs, res := runSh(t, job, `n=$(cat "$1" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1"; echo "attempt $n" >&2; [ $n -ge 3 ] && echo ok`, counter)
	want := []EventKind{TaskStarted, TaskRetrying, TaskStarted, TaskRetrying, TaskStarted, TaskFinished}
	if got := evs.kinds(); !equalKinds(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if res.Status != Completed || res.Attempt != 3 || res.Value != "ok" {
		t.Errorf("got %s attempt %d %v", res.Status, res.Attempt, res.Value)
	}
	if r := evs.all[1].Result; r.Attempt != 1 || string(r.Stderr) != "attempt 1\n" {
		t.Errorf("first retry: attempt %d stderr %q", r.Attempt, r.Stderr)
	}
}

func equalKinds(a, b []EventKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExecTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	job := &lang.Job{Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, res := runSh(t, job, `sleep 30 & echo $! > "$1"; echo started >&2; sleep 30`, pidFile)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	if res.Exception != "TimeoutError" || res.Message != "attempt 1 exceeded the 300ms timeout" || res.Traceback != "started" {
		t.Errorf("got %s %q %q", res.Exception, res.Message, res.Traceback)
	}
	assertGone(t, pidFile)
}

func TestExecLeftoverChildrenKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	_, res := runSh(t, nil, `sleep 30 >/dev/null 2>&1 & echo $! > "$1"; echo done`, pidFile)
	if res.Status != Completed || time.Since(start) > 5*time.Second {
		t.Errorf("got %s after %s", res.Status, time.Since(start))
	}
	assertGone(t, pidFile)
}

func assertGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still alive", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive tells whether pid runs: a zombie waiting for its reaper (PID 1 here may reap late)
// does not.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestExecCancel(t *testing.T) {
	e := &Executor{Job: &lang.Job{}, WorkRoot: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	var evs events
	start := time.Now()
	e.RunCommand(ctx, &lang.Command{Args: []string{"sleep", "30"}}, Task{Name: "f-0"}, &evs)
	if res := evs.final(t); res.Status != Canceled || time.Since(start) > 5*time.Second {
		t.Errorf("got %s after %s", res.Status, time.Since(start))
	}
}

func TestExecBoundedOutput(t *testing.T) {
	// 64 MB through a 4 KiB buffer.
	_, res := runSh(t, nil, `head -c 67108864 /dev/zero | tr '\0' 'x'; echo; echo 7`)
	if res.Status != Completed || res.Value != 7 {
		t.Fatalf("got %s %v", res.Status, res.Value)
	}
	if len(res.Stdout) > 9000 || !strings.Contains(string(res.Stdout), "bytes omitted") {
		t.Errorf("stdout kept %d bytes", len(res.Stdout))
	}
}

func TestExecShipsFiles(t *testing.T) {
	ship := t.TempDir()
	os.MkdirAll(filepath.Join(ship, "lib"), 0o755)
	os.WriteFile(filepath.Join(ship, "run.sh"), []byte("#!/bin/sh\ncat lib/data.txt\n"), 0o755)
	os.WriteFile(filepath.Join(ship, "lib", "data.txt"), []byte("\"shipped\"\n"), 0o644)
	job := &lang.Job{Ship: []lang.Ship{{Path: "run.sh"}, {Path: "lib/data.txt"}}}
	e := &Executor{Job: job, ShipDir: ship, WorkRoot: t.TempDir()}
	var evs events
	e.RunCommand(context.Background(), &lang.Command{Args: []string{"./run.sh"}}, Task{Name: "f-0"}, &evs)
	if res := evs.final(t); res.Value != "shipped" {
		t.Errorf("got %s %s %s %v", res.Status, res.Exception, res.Message, res.Value)
	}
}

// Every attempt starts in an empty working directory of its own, though the directory of an
// attempt that left it empty is used again: what one task leaves behind never reaches another,
// and Close leaves nothing in WorkRoot.
func TestExecWorkingDirectories(t *testing.T) {
	root := t.TempDir()
	e := &Executor{Job: &lang.Job{Name: "j"}, WorkRoot: root}
	run := func(i int, script string) *Result {
		var evs events
		e.RunCommand(context.Background(), &lang.Command{Args: []string{"sh", "-c", script}},
			Task{Index: i, Name: "f-" + strconv.Itoa(i)}, &evs)
		return evs.final(t)
	}
	var dirs []string
	for i, script := range []string{
		`ls -A | wc -l; pwd >&2`,                // empty; leaves nothing: kept
		`ls -A | wc -l; pwd >&2; echo x > left`, // empty; leaves a file: removed
		`ls -A | wc -l; pwd >&2; mkdir -p .a/b`, // empty; leaves a hidden tree: removed
		`ls -A | wc -l; pwd >&2; chmod 755 .`,   // empty; opens its directory up: removed
		`ls -A | wc -l; pwd >&2`,                // empty
		`ls -A | wc -l; pwd >&2`,                // empty
	} {
		res := run(i, script)
		if res.Status != Completed || fmt.Sprint(res.Value) != "0" {
			t.Fatalf("task %d: %s %v %s (stderr %s)", i, res.Status, res.Value, res.Message, res.Stderr)
		}
		dirs = append(dirs, strings.TrimSpace(string(res.Stderr)))
	}
	if dirs[1] != dirs[0] || dirs[2] == dirs[1] || dirs[3] == dirs[2] || dirs[4] == dirs[3] || dirs[5] != dirs[4] {
		t.Errorf("working directories %q: want the 1st reused by the 2nd, and none reused after files were left or the mode changed", dirs)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(root); len(left) != 0 {
		t.Errorf("WorkRoot holds %d entries after Close", len(left))
	}
}
