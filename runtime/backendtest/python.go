package backendtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mapflow/mapflow/catalog"
	rt "github.com/mapflow/mapflow/runtime"
)

// The Python cases: python(...) functions in warm worker processes, on every backend.

const addPy = `def add(x, y):
    return x + y


def add_combiner(**kwargs):
    return sum(kwargs.values())
`

// pythonSeed is the seed in Python: the order of the results, Python's exception with its
// traceback, and a Python combiner.
func (s *suite) pythonSeed(t *testing.T) {
	j := s.write(t, "pyseed", `
func add(x, y) = python("add.py")

params [
  {x: 20, y: 20},
  {x: null, y: 10},
  {x: 5, y: 5},
]

combine python("add.py", "add_combiner")
`, map[string]string{"add.py": addPy})
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{40, nil, 10})
	equal(t, "combined", rep.Combined, 50)
	if rep.Status != rt.Failed || rep.NumFailed != 1 || rep.CombineErr != nil {
		t.Errorf("status %s, %d failed, combine error %v", rep.Status, rep.NumFailed, rep.CombineErr)
	}
	rs := rows(t, j.cat, rep.JobID)
	r := rs[1]
	if r.Status != "Failed" || r.Exception != "TypeError" ||
		r.Message != "unsupported operand type(s) for +: 'NoneType' and 'int'" {
		t.Errorf("row 1: %s %q %q", r.Status, r.Exception, r.Message)
	}
	if !strings.HasPrefix(r.Traceback, "Traceback (most recent call last):") ||
		!strings.Contains(r.Traceback, `File "add.py", line 2, in add`) ||
		!strings.HasSuffix(r.Traceback, "TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'") {
		t.Errorf("row 1 traceback:\n%s", r.Traceback)
	}
	if strings.Contains(r.Traceback, "mapflow") || strings.Contains(r.Traceback, "<string>") {
		t.Errorf("the traceback shows the runner's frames:\n%s", r.Traceback)
	}
	for _, i := range []int{0, 2} {
		if rs[i].Status != "Completed" || rs[i].Host == "" || rs[i].End.Before(rs[i].Start) || rs[i].Attempt != 1 {
			t.Errorf("row %d: %+v", i, rs[i])
		}
	}

	// Every parameter set completes: [40, 20, 10] and 70.
	j = s.write(t, "pyseedok", `
func add(x, y) = python("add.py")

params [{x: 20, y: 20}, {x: 10, y: 10}, {x: 5, y: 5}]

combine python("add.py", "add_combiner")
`, map[string]string{"add.py": addPy})
	rep = s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{40, 20, 10})
	equal(t, "combined", rep.Combined, 70)
	if rep.Status != rt.Completed {
		t.Errorf("status %s", rep.Status)
	}
}

// pythonOrdering: results keep the params' order though the first task ends last, and many
// fast tasks all come back. Task 0 waits until another task has ended (a marker file every
// other task writes, up to 60 s): a fixed sleep was not always enough on a backend whose other
// workers start late (a Slurm array's tasks).
func (s *suite) pythonOrdering(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "another-task-ended")
	j := s.write(t, "pyorder", `
func f(i) = python("tasks.py")

params map(0..599, ({i: #, unused: "x"}))

combine sum(results)
`, map[string]string{"tasks.py": fmt.Sprintf(`import os, time

MARKER = %q

def f(i):
    if i == 0:
        time.sleep(1.5)
        for _ in range(600):
            if os.path.exists(MARKER):
                break
            time.sleep(0.1)
    else:
        open(MARKER, "a").close()
    return {"i": i, "sq": i * i}
`, marker)})
	rep := s.run(t, j, context.Background(), rt.Options{})
	if len(rep.MapResults) != 600 || rep.Status != rt.Completed {
		t.Fatalf("%d results, status %s", len(rep.MapResults), rep.Status)
	}
	for i, v := range rep.MapResults {
		equal(t, fmt.Sprintf("map result %d", i), v, map[string]any{"i": i, "sq": i * i})
		if t.Failed() {
			break
		}
	}
	rs := rows(t, j.cat, rep.JobID)
	if !slices.ContainsFunc(rs[1:], func(r *catalog.Task) bool { return r.End.Before(rs[0].End) }) {
		t.Errorf("task 0 (the slowest) ended first: the case did not finish tasks out of order")
	}
	if d := rs[0].End.Sub(rs[0].Start); d < time.Second {
		t.Errorf("task 0 slept 1.5 s but its row says %s", d)
	}
}

// pythonOutput: print() and stderr go to the task's own logs; megabytes of output and output
// that looks like the protocol do not disturb the worker.
func (s *suite) pythonOutput(t *testing.T) {
	j := s.write(t, "pyout", `
func talk(i) = python("talk.py")

params map(0..7, ({i: #}))
`, map[string]string{"talk.py": `import os, sys

print("loading talk")

def talk(i):
    print("out of task", i)
    print("err of task", i, file=sys.stderr)
    if i == 3:
        print('{"index": 99, "result": 1}')
        os.write(1, b'{"ready": true}\n')
        os.write(4 if False else 1, b"raw write\n")
    if i == 5:
        sys.stdout.write("x" * (3 << 20))
        sys.stdout.write("\nend of big\n")
    return i * 10
`})
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{0, 10, 20, 30, 40, 50, 60, 70})
	for i := range 8 {
		logs, err := j.cat.Logs(context.Background(), rep.JobID, i)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, l := range logs {
			got[l.Stream] = string(l.Data)
		}
		out, errOut := got["stdout"], got["stderr"]
		out = strings.TrimPrefix(out, "loading talk\n") // the first task of each process has its import's output
		switch i {
		case 3:
			want := "out of task 3\n" + `{"index": 99, "result": 1}` + "\n" + `{"ready": true}` + "\nraw write\n"
			if out != want {
				t.Errorf("stdout of task 3 = %q, want %q", out, want)
			}
		case 5:
			if !strings.HasPrefix(out, "out of task 5\nxxx") || !strings.HasSuffix(out, "\nend of big\n") ||
				!strings.Contains(out, "bytes omitted") || len(out) > 3<<20 {
				t.Errorf("stdout of task 5: %d bytes, %q...%q", len(out), out[:min(30, len(out))], out[max(0, len(out)-30):])
			}
		default:
			if out != fmt.Sprintf("out of task %d\n", i) {
				t.Errorf("stdout of task %d = %q", i, out)
			}
		}
		if errOut != fmt.Sprintf("err of task %d\n", i) {
			t.Errorf("stderr of task %d = %q", i, errOut)
		}
	}
}

// pythonWorkerLost: a task that ends its process fails with WorkerLost, with its exit status or
// signal; the next task runs in a fresh process; retries apply.
func (s *suite) pythonWorkerLost(t *testing.T) {
	j := s.write(t, "pylost", `
func f(i) = python("die.py")

params map(0..5, ({i: #}))

retries 1
`, map[string]string{"die.py": `import os, signal, sys

def f(i):
    if i == 2:
        print("about to exit", file=sys.stderr, flush=True)
        os._exit(3)
    if i == 4:
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()
`})
	rep := s.run(t, j, context.Background(), rt.Options{})
	rs := rows(t, j.cat, rep.JobID)
	if rep.NumFailed != 2 {
		t.Errorf("%d failed, want 2", rep.NumFailed)
	}
	for i, r := range rs {
		switch i {
		case 2, 4:
			want := "exit status 3"
			if i == 4 {
				want = "killed by signal 9"
			}
			if r.Status != "Failed" || r.Exception != "WorkerLost" || !strings.Contains(r.Message, want) || r.Attempt != 2 {
				t.Errorf("row %d: %s %s %q attempt %d; want Failed WorkerLost %q attempt 2", i, r.Status, r.Exception, r.Message, r.Attempt, want)
			}
			if i == 2 && !strings.Contains(r.Traceback, "about to exit") {
				t.Errorf("row 2 traceback %q lacks the task's stderr", r.Traceback)
			}
		default:
			if r.Status != "Completed" {
				t.Errorf("row %d: %s %s %s", i, r.Status, r.Exception, r.Message)
			}
		}
	}
	got := query(t, j, "select task_index, attempt, exception from task_attempts where job_id = '%s' order by task_index", rep.JobID)
	if len(got) != 2 || got[0][2] != "WorkerLost" || got[1][2] != "WorkerLost" {
		t.Errorf("task_attempts: %v", got)
	}
}

// pythonTimeout: a task past the timeout is killed with its whole process group, and the
// process is started again for the next task; an import that never ends is bounded too.
func (s *suite) pythonTimeout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	j := s.write(t, "pytimeout", fmt.Sprintf(`
func f(i) = python("slow.py")

params [{i: 0}, {i: 1}, {i: 2}]

timeout 1s
`), map[string]string{"slow.py": fmt.Sprintf(`import subprocess, sys, time

def f(i):
    if i == 1:
        child = subprocess.Popen(["sleep", "60"])
        with open(%q, "w") as out:
            out.write(str(child.pid))
        print("waiting", file=sys.stderr, flush=True)
        time.sleep(60)
    return i
`, pidFile)})
	start := time.Now()
	rep := s.run(t, j, context.Background(), rt.Options{})
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the job took %s", d)
	}
	equal(t, "map results", rep.MapResults, []any{0, nil, 2})
	r := rows(t, j.cat, rep.JobID)[1]
	if r.Status != "Failed" || r.Exception != "TimeoutError" || !strings.Contains(r.Message, "1s") || !strings.Contains(r.Traceback, "waiting") {
		t.Errorf("row 1: %s %s %q %q", r.Status, r.Exception, r.Message, r.Traceback)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the task did not start its child: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if !Gone(pid, 5*time.Second) {
		t.Errorf("the task's child %d outlived the timeout", pid)
	}

	// A module whose import never ends fails its tasks (or the run) within the timeout.
	j = s.write(t, "pyhang", `
func f(i) = python("hang.py")

params [{i: 0}]

timeout 1s
`, map[string]string{"hang.py": "import time\ntime.sleep(3600)\n\ndef f(i):\n    return i\n"})
	start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	rep, err = rt.Run(ctx, j.cat, s.newBackend(t, j.env), j.job, j.env, rt.Options{})
	if d := time.Since(start); d > 40*time.Second {
		t.Errorf("the job with a hanging import took %s", d)
	}
	s.checkStartFailure(t, j, rep, err, "TimeoutError", "did not load within the 1s timeout")
}

// checkStartFailure checks a job whose worker processes cannot start: a backend that starts
// one before any task (local) fails the run with why; one whose workers start remotely fails
// every task with it, and the job's error says it once.
func (s *suite) checkStartFailure(t *testing.T, j *job, rep *rt.Report, err error, exception, message string) {
	t.Helper()
	if err != nil {
		if err == nil || !strings.Contains(err.Error(), exception) || !strings.Contains(err.Error(), message) {
			t.Errorf("run error %v, want %s: %s", err, exception, message)
		}
		if rep != nil && rep.NumDone != 0 {
			t.Errorf("%d tasks ran", rep.NumDone)
		}
		return
	}
	for i, r := range rows(t, j.cat, rep.JobID) {
		if r.Status != "Failed" || r.Exception != exception || !strings.Contains(r.Message, message) {
			t.Errorf("row %d: %s %s %q, want Failed %s %q", i, r.Status, r.Exception, r.Message, exception, message)
		}
	}
	jr := jobRow(t, j.cat, rep.JobID)
	if strings.Count(jr.Error, message) != 1 {
		t.Errorf("job error %q should say %q once", jr.Error, message)
	}
}

// pythonImportError: a module that does not import is Python's own error, with its traceback.
func (s *suite) pythonImportError(t *testing.T) {
	j := s.write(t, "pyimport", `
func f(i) = python("broken.py")

params map(0..3, ({i: #}))
`, map[string]string{"broken.py": "import numpy_that_is_not_there\n\ndef f(i):\n    return i\n"})
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	rep, err := rt.Run(ctx, j.cat, s.newBackend(t, j.env), j.job, j.env, rt.Options{})
	s.checkStartFailure(t, j, rep, err, "ModuleNotFoundError", "No module named 'numpy_that_is_not_there'")
	if err == nil {
		r := rows(t, j.cat, rep.JobID)[0]
		if !strings.Contains(r.Traceback, `File "broken.py", line 1, in <module>`) {
			t.Errorf("traceback:\n%s", r.Traceback)
		}
	} else if err != nil && !strings.Contains(err.Error(), `File "broken.py", line 1`) {
		t.Errorf("error %v lacks the traceback", err)
	}
}

// pythonRetries: a function that fails twice then succeeds, with retries 3; and a user-defined
// exception by its qualified name.
func (s *suite) pythonRetries(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "attempts")
	j := s.write(t, "pyretries", fmt.Sprintf(`
func flaky(i) = python("flaky.py")

params [{i: 0}, {i: 1}]

retries 3
`), map[string]string{"flaky.py": fmt.Sprintf(`import os


class BadInput(ValueError):
    pass


def flaky(i):
    if i == 1:
        raise BadInput("i must not be 1")
    n = int(open(%q).read()) if os.path.exists(%q) else 0
    n += 1
    open(%q, "w").write(str(n))
    if n < 3:
        raise ConnectionError("try %%d failed" %% n)
    return {"attempt": int(os.environ["MAPFLOW_ATTEMPT"]), "task": os.environ["MAPFLOW_TASK_NAME"]}
`, counter, counter, counter)})
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{map[string]any{"attempt": 3, "task": "flaky-0"}, nil})
	rs := rows(t, j.cat, rep.JobID)
	if rs[0].Status != "Completed" || rs[0].Attempt != 3 {
		t.Errorf("row 0: %+v", rs[0])
	}
	if r := rs[1]; r.Status != "Failed" || r.Exception != "flaky.BadInput" || r.Message != "i must not be 1" || r.Attempt != 4 {
		t.Errorf("row 1: %s %q %q attempt %d", r.Status, r.Exception, r.Message, r.Attempt)
	}
	got := query(t, j, "select attempt, exception, exception_message from task_attempts where job_id = '%s' and task_index = 0 order by attempt", rep.JobID)
	equal(t, "task_attempts of task 0", fmt.Sprint(got), fmt.Sprint([][]any{{1, "ConnectionError", "try 1 failed"}, {2, "ConnectionError", "try 2 failed"}}))
}

// pythonRecycle: `recycle 2` runs at most two tasks in each process.
func (s *suite) pythonRecycle(t *testing.T) {
	j := s.write(t, "pyrecycle", `
func pid(i) = python("pid.py")

params map(0..9, ({i: #}))

recycle 2
`, map[string]string{"pid.py": "import os\n\ndef pid(i):\n    return os.getpid()\n"})
	rep := s.run(t, j, context.Background(), rt.Options{})
	count := map[any]int{}
	for i, v := range rep.MapResults {
		if v == nil {
			t.Fatalf("task %d failed", i)
		}
		count[v]++
	}
	for pid, n := range count {
		if n > 2 {
			t.Errorf("process %v ran %d tasks with recycle 2", pid, n)
		}
	}
	if len(count) < 5 {
		t.Errorf("%d processes ran 10 tasks with recycle 2", len(count))
	}
}
