// Package backendtest is the conformance suite every mapflow backend passes. Each case writes
// a real job file in a temporary directory, loads it with lang.Load, runs it through the driver
// with a catalog in a temporary directory, and checks what a user would see: the map results,
// the combined result and the catalog's rows.
//
// A backend's test runs it in a few lines:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) rt.Backend { return local.New(local.Config{}) },
//			backendtest.Options{})
//	}
package backendtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
)

// Options describe the backend under test and the abilities it lacks.
type Options struct {
	// Env is the env block written into every job file; "" is `env local { workers = 4 }`.
	// It should allow at least two tasks to run at once.
	Env string
	// LoseWorker, when set, makes the backend lose a worker (kill a container, terminate a
	// host) while tasks run on it; the lost-worker case checks that every task still ends
	// Completed. Backends that cannot lose a worker leave it nil and the case is skipped.
	LoseWorker func(t *testing.T, b rt.Backend)
	// SeparateWorkers says the tasks run in worker processes apart from the driver (YARN
	// containers, EC2 hosts), so a task can kill its own worker; the poison-task case runs
	// only then.
	SeparateWorkers bool
	// Timeout bounds each case's run; 0 is two minutes.
	Timeout time.Duration
}

// Run runs every case against backends made by newBackend (one per case) from the case's env
// block (opts.Env); rt.NewBackend makes a backend as `mapflow run` does.
func Run(t *testing.T, newBackend func(t *testing.T, env *lang.Env) rt.Backend, opts Options) {
	if opts.Env == "" {
		opts.Env = "env local { workers = 4 }"
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	s := &suite{newBackend: newBackend, opts: opts}
	for _, c := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Ordering", s.ordering},
		{"ManyExpressions", s.manyExpressions},
		{"PartialResults", s.partialResults},
		{"Exceptions", s.exceptions},
		{"ExitError", s.exitError},
		{"CombineTasks", s.combineTasks},
		{"Retries", s.retries},
		{"Timeout", s.timeout},
		{"Cancel", s.cancel},
		{"CancelRequest", s.cancelRequest},
		{"ShellMetacharacters", s.shellMetacharacters},
		{"ShippedFiles", s.shippedFiles},
		{"Resume", s.resume},
		{"Cache", s.cache},
		{"LostWorker", s.lostWorker},
		{"PoisonTask", s.poisonTask},
		{"PythonSeed", s.pythonSeed},
		{"PythonOrdering", s.pythonOrdering},
		{"PythonOutput", s.pythonOutput},
		{"PythonWorkerLost", s.pythonWorkerLost},
		{"PythonTimeout", s.pythonTimeout},
		{"PythonImportError", s.pythonImportError},
		{"PythonRetries", s.pythonRetries},
		{"PythonRecycle", s.pythonRecycle},
	} {
		t.Run(c.name, c.fn)
	}
}

type suite struct {
	newBackend func(t *testing.T, env *lang.Env) rt.Backend
	opts       Options
}

// job is a job file written for a case, and its catalog.
type job struct {
	dir     string
	path    string
	job     *lang.Job
	env     *lang.Env
	cat     *catalog.Catalog
	catPath string
}

// write writes the job file (name.mf, with the env block after the job line) and the other
// files into a fresh directory, and loads it.
func (s *suite) write(t *testing.T, name, body string, files map[string]string) *job {
	t.Helper()
	dir := t.TempDir()
	for f, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := "job " + name + "\n\n" + s.opts.Env + "\n\n" + body
	path := filepath.Join(dir, name+".mf")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := lang.Load(path)
	if err != nil {
		t.Fatalf("load %s:\n%s\n%v", path, src, err)
	}
	env, err := j.DefaultEnv("")
	if err != nil {
		t.Fatal(err)
	}
	catPath := filepath.Join(t.TempDir(), "catalog.db")
	cat, err := catalog.Open(catPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return &job{dir: dir, path: path, job: j, env: env, cat: cat, catPath: catPath}
}

// run runs the job through the driver on a new backend.
func (s *suite) run(t *testing.T, j *job, ctx context.Context, opts rt.Options) *rt.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	rep, err := rt.Run(ctx, j.cat, s.newBackend(t, j.env), j.job, j.env, opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.JobID == "" || rep.Name != j.job.Name {
		t.Errorf("report names job %q (%q), want name %q", rep.JobID, rep.Name, j.job.Name)
	}
	return rep
}

// rows reads the job's task rows in index order.
func rows(t *testing.T, cat *catalog.Catalog, jobID string) []*catalog.Task {
	t.Helper()
	var all []*catalog.Task
	err := cat.Tasks(context.Background(), jobID, func(row *catalog.Task) error {
		c := *row
		all = append(all, &c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range all {
		if r.Index != i {
			t.Fatalf("row %d has task_index %d", i, r.Index)
		}
	}
	return all
}

// jobRow reads the job's row.
func jobRow(t *testing.T, cat *catalog.Catalog, jobID string) *catalog.Job {
	t.Helper()
	row, err := cat.FindJob(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

// query runs SQL on the catalog read-only, as `mapflow sql` does.
func query(t *testing.T, j *job, q string, args ...any) [][]any {
	t.Helper()
	r, err := catalog.OpenReader(j.catPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, out, err := r.Query(context.Background(), fmt.Sprintf(q, args...))
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// normalize makes numbers comparable whatever their Go type: a backend may give 40 as an int
// or a float64 and a user sees 40 either way.
func normalize(v any) any {
	switch v := v.(type) {
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

func (s *suite) ordering(t *testing.T) {
	// The first task sleeps, so the others finish before it on any backend that runs two
	// tasks at once, however it spreads them.
	j := s.write(t, "ordering", `
func f(i, s) = exec("sh", "-c", "sleep \"$1\"; echo \"$2\"", "sh", s, i)

params [
  {i: 0, s: 1.5},
  {i: 1, s: 0.2},
  {i: 2, s: 0},
  {i: 3, s: 0},
  {i: 4, s: 0},
]

combine results
`, nil)
	rep := s.run(t, j, context.Background(), rt.Options{})
	want := []any{0, 1, 2, 3, 4}
	equal(t, "map results", rep.MapResults, want)
	equal(t, "combined", rep.Combined, want)
	if rep.Status != rt.Completed || rep.NumTasks != 5 || rep.NumFailed != 0 {
		t.Errorf("status %s, %d tasks, %d failed", rep.Status, rep.NumTasks, rep.NumFailed)
	}
	rs := rows(t, j.cat, rep.JobID)
	if len(rs) != 5 {
		t.Fatalf("%d rows", len(rs))
	}
	for i, r := range rs {
		if r.Status != "Completed" || r.Name != "f-"+strconv.Itoa(i) || r.Attempt != 1 || r.Host == "" ||
			r.Start.IsZero() || r.End.Before(r.Start) || r.ExitCode == nil || *r.ExitCode != 0 {
			t.Errorf("row %d: %+v", i, r)
		}
		equal(t, fmt.Sprintf("row %d result", i), string(r.Result), strconv.Itoa(i))
	}
	if !slices.ContainsFunc(rs[1:], func(r *catalog.Task) bool { return r.End.Before(rs[0].End) }) {
		t.Errorf("task 0 (the slowest) ended first: the case did not finish tasks out of order")
	}
	jr := jobRow(t, j.cat, rep.JobID)
	if jr.Status != "Completed" || jr.NumTasks != 5 || string(jr.Result) != "[0,1,2,3,4]" || jr.ScriptText == "" || jr.ScriptSHA256 == "" || jr.FinishedAt.IsZero() {
		t.Errorf("job row: %+v", jr)
	}
}

func (s *suite) manyExpressions(t *testing.T) {
	j := s.write(t, "many", `
func f(x, y) = x * 2 + y

params map(0..1999, ({x: #, y: 1}))

combine sum(results)
`, nil)
	rep := s.run(t, j, context.Background(), rt.Options{})
	// The report holds the first results, which run prints; the catalog has them all.
	if len(rep.MapResults) != rt.ShownResults || rep.NumResults != 2000 {
		t.Fatalf("%d map results of %d", len(rep.MapResults), rep.NumResults)
	}
	equal(t, "combined", rep.Combined, 2000*2000)
	rs := rows(t, j.cat, rep.JobID)
	if len(rs) != 2000 || rs[1999].Status != "Completed" || string(rs[7].Params) != `{"x":7,"y":1}` {
		t.Fatalf("%d rows; last %+v; params of 7: %s", len(rs), rs[len(rs)-1], rs[7].Params)
	}
	for i, r := range rs {
		if v := normalize(rt.DecodeJSON(r.Result)); v != float64(2*i+1) {
			t.Fatalf("result %d = %v", i, v)
		}
		if i < len(rep.MapResults) && normalize(rep.MapResults[i]) != float64(2*i+1) {
			t.Fatalf("map result %d = %v", i, rep.MapResults[i])
		}
	}
}

func (s *suite) partialResults(t *testing.T) {
	j := s.write(t, "partial", `
func add(x, y) = x + y

params [
  {x: 20, y: 20},
  {x: null, y: 10},
  {x: 5, y: 5},
]

combine sum(results)
`, nil)
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{40, nil, 10})
	equal(t, "combined", rep.Combined, 50)
	if rep.Status != rt.Failed || rep.NumFailed != 1 || rep.CombineErr != nil {
		t.Errorf("status %s, %d failed, combine error %v", rep.Status, rep.NumFailed, rep.CombineErr)
	}
	rs := rows(t, j.cat, rep.JobID)
	r := rs[1]
	if r.Status != "Failed" || r.Exception != "TypeError" || r.Result != nil || r.Message == "" {
		t.Errorf("row 1: %+v", r)
	}
	// The traceback names the .mf line of the function.
	want := fmt.Sprintf("partial.mf:%d", lineOf(t, j.path, "func add"))
	if !strings.Contains(r.Traceback, want) {
		t.Errorf("row 1 traceback %q does not name %s", r.Traceback, want)
	}
	jr := jobRow(t, j.cat, rep.JobID)
	if jr.Status != "Failed" || !strings.Contains(jr.Error, "1 of 3 tasks failed") || string(jr.Result) != "50" {
		t.Errorf("job row: status %s error %q result %s", jr.Status, jr.Error, jr.Result)
	}
}

func lineOf(t *testing.T, path, prefix string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, prefix) {
			return i + 1
		}
	}
	t.Fatalf("no line %q in %s", prefix, path)
	return 0
}

func (s *suite) exceptions(t *testing.T) {
	j := s.write(t, "exceptions", `
func div(x, y) = x / y

params [
  {x: 1, y: 2},
  {y: 2},
  {x: 1, y: 0},
]
`, nil)
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{0.5, nil, nil})
	if rep.Combined != nil || rep.NumFailed != 2 {
		t.Errorf("combined %v, %d failed", rep.Combined, rep.NumFailed)
	}
	rs := rows(t, j.cat, rep.JobID)
	for i, want := range map[int]string{1: "KeyError", 2: "ZeroDivisionError"} {
		if rs[i].Status != "Failed" || rs[i].Exception != want || rs[i].Message == "" || rs[i].Traceback == "" {
			t.Errorf("row %d: %+v, want a %s", i, rs[i], want)
		}
	}
	if !strings.Contains(rs[1].Message, `"x"`) {
		t.Errorf("KeyError message %q does not name x", rs[1].Message)
	}
}

func (s *suite) exitError(t *testing.T) {
	j := s.write(t, "exiterror", `
func f(code) = exec("sh", "fail.sh", code)
ship "fail.sh"

params [{code: 0}, {code: 3}]
`, map[string]string{"fail.sh": `for i in $(seq 1 40); do echo "err $i" >&2; done
echo out
exit $1
`})
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{"out", nil})
	rs := rows(t, j.cat, rep.JobID)
	r := rs[1]
	if r.Status != "Failed" || r.Exception != "ExitError" || r.Message != "exit status 3" || r.ExitCode == nil || *r.ExitCode != 3 {
		t.Fatalf("row 1: %+v", r)
	}
	if !strings.HasSuffix(r.Traceback, "err 40") || strings.Contains(r.Traceback, "err 1\n") || !strings.Contains(r.Traceback, "err 30") {
		t.Errorf("traceback is not the tail of stderr: %q", r.Traceback)
	}
	logs, err := j.cat.Logs(context.Background(), rep.JobID, 1)
	if err != nil {
		t.Fatal(err)
	}
	var streams []string
	for _, l := range logs {
		streams = append(streams, l.Stream)
		if l.Stream == "stderr" && !strings.HasPrefix(string(l.Data), "err 1\n") {
			t.Errorf("stderr log starts %q", l.Data[:min(20, len(l.Data))])
		}
	}
	if len(logs) != 2 {
		t.Errorf("logs of task 1: %v", streams)
	}
}

func (s *suite) combineTasks(t *testing.T) {
	j := s.write(t, "combinetasks", `
func sq(x) = x * x

params [{x: 1}, {x: "a"}, {x: 3}]

combine {n: len(tasks), second: tasks["sq-1"], third: tasks["sq-2"], ok: len(results)}
`, nil)
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "combined", rep.Combined, map[string]any{"n": 3, "second": nil, "third": 9, "ok": 2})
	if rep.CombineErr != nil {
		t.Error(rep.CombineErr)
	}

	// A combiner that fails is reported, not a panic.
	j = s.write(t, "combinefails", `
func id(x) = x

params [{x: 1}, {x: 0}]

combine 1 / results[1]
`, nil)
	rep = s.run(t, j, context.Background(), rt.Options{})
	if rep.CombineErr == nil || rep.Combined != nil {
		t.Errorf("combined %v, error %v", rep.Combined, rep.CombineErr)
	}
	if jr := jobRow(t, j.cat, rep.JobID); !strings.Contains(jr.Error, "combine") || jr.Result != nil {
		t.Errorf("job row error %q result %s", jr.Error, jr.Result)
	}
}

func (s *suite) retries(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "attempts")
	j := s.write(t, "retries", fmt.Sprintf(`
func f(counter) = exec("sh", "flaky.sh", counter)
ship "flaky.sh"

params [{counter: %q}]

retries 3
`, counter), map[string]string{"flaky.sh": `n=$(cat "$1" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "$1"
echo "attempt $n of task $MAPFLOW_TASK_NAME" >&2
if [ $n -lt 3 ]; then exit 1; fi
echo "{\"attempt\": $MAPFLOW_ATTEMPT}"
`})
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{map[string]any{"attempt": 3}})
	rs := rows(t, j.cat, rep.JobID)
	if rs[0].Status != "Completed" || rs[0].Attempt != 3 {
		t.Errorf("row: %+v", rs[0])
	}
	got := query(t, j, "select attempt, status, exception, exit_code from task_attempts where job_id = '%s' order by attempt", rep.JobID)
	if len(got) != 2 {
		t.Fatalf("task_attempts rows: %v", got)
	}
	for i, r := range got {
		equal(t, fmt.Sprintf("task_attempts row %d", i), []any{normalize(r[0]), r[1], r[2], normalize(r[3])},
			[]any{float64(i + 1), "Failed", "ExitError", float64(1)})
	}
	logs, err := j.cat.Logs(context.Background(), rep.JobID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var stderrs []string
	for _, l := range logs {
		if l.Stream == "stderr" {
			stderrs = append(stderrs, strings.TrimSpace(string(l.Data)))
		}
	}
	equal(t, "stderr logs", stderrs, []string{"attempt 1 of task f-0", "attempt 2 of task f-0", "attempt 3 of task f-0"})
}

func (s *suite) timeout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	j := s.write(t, "timeout", fmt.Sprintf(`
func f(pidfile) = exec("sh", "-c", "sleep 60 & echo $! > \"$1\"; echo waiting >&2; sleep 60", "sh", pidfile)

params [{pidfile: %q}]

timeout 500ms
`, pidFile), nil)
	start := time.Now()
	rep := s.run(t, j, context.Background(), rt.Options{})
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the job took %s", d)
	}
	rs := rows(t, j.cat, rep.JobID)
	r := rs[0]
	if r.Status != "Failed" || r.Exception != "TimeoutError" || !strings.Contains(r.Message, "500ms") || !strings.Contains(r.Traceback, "waiting") {
		t.Errorf("row: %+v", r)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the task did not start its child: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if !Gone(pid, 5*time.Second) {
		t.Errorf("the task's child %d outlived the timeout", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Gone waits up to d for process pid to end, and tells whether it did. A zombie waiting for
// its reaper counts as ended.
func Gone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// slowJob is a job of n tasks that each sleep for sleep seconds.
func (s *suite) slowJob(t *testing.T, name string, n int, sleep string) *job {
	var b strings.Builder
	b.WriteString("func nap(i) = exec(\"sh\", \"-c\", \"sleep " + sleep + "; echo \\\"$1\\\"\", \"sh\", i)\n\nparams map(0.." + strconv.Itoa(n-1) + ", ({i: #}))\n\ncombine sum(results)\n")
	return s.write(t, name, b.String(), nil)
}

// checkCanceled checks the rows of a canceled job: none Pending or Running, each Completed or
// Canceled, at least one Canceled.
func checkCanceled(t *testing.T, j *job, rep *rt.Report, n int) {
	t.Helper()
	if rep.Status != rt.Canceled {
		t.Errorf("status %s", rep.Status)
	}
	rs := rows(t, j.cat, rep.JobID)
	if len(rs) != n {
		t.Errorf("%d rows, want %d", len(rs), n)
	}
	counts := map[string]int{}
	for i, r := range rs {
		counts[r.Status]++
		switch r.Status {
		case "Completed":
			equal(t, fmt.Sprintf("map result %d", i), rep.MapResults[i], i)
		case "Canceled":
			if rep.MapResults[i] != nil {
				t.Errorf("canceled task %d has result %v", i, rep.MapResults[i])
			}
		default:
			t.Errorf("row %d is %s after cancel", i, r.Status)
		}
	}
	if counts["Canceled"] == 0 || counts["Completed"] == 0 {
		t.Errorf("rows by status %v: want both Completed and Canceled", counts)
	}
	if jr := jobRow(t, j.cat, rep.JobID); jr.Status != "Canceled" || jr.FinishedAt.IsZero() {
		t.Errorf("job row status %s finished %v", jr.Status, jr.FinishedAt)
	}
}

func (s *suite) cancel(t *testing.T) {
	const n = 40
	j := s.slowJob(t, "cancel", n, "0.3")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	start := time.Now()
	rep := s.run(t, j, ctx, rt.Options{Progress: func(c rt.Counts) {
		if c.Done >= 2 {
			once.Do(cancel)
		}
	}})
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the canceled job took %s", d)
	}
	checkCanceled(t, j, rep, n)
}

func (s *suite) cancelRequest(t *testing.T) {
	// Enough work that the request (seen at the next heartbeat, then by the workers at their
	// next poll) lands while tasks remain, even on a busy machine.
	const n = 60
	j := s.slowJob(t, "cancelreq", n, "0.4")
	var once sync.Once
	var id string
	rep := s.run(t, j, context.Background(), rt.Options{Progress: func(c rt.Counts) {
		if c.Done >= 1 {
			once.Do(func() {
				jobs, err := j.cat.Jobs(context.Background(), 1)
				if err != nil || len(jobs) == 0 {
					t.Errorf("list jobs: %v", err)
					return
				}
				id = jobs[0].ID
				if err := j.cat.RequestCancel(context.Background(), id); err != nil {
					t.Error(err)
				}
			})
		}
	}})
	if id != rep.JobID {
		t.Errorf("canceled job %q, ran %q", id, rep.JobID)
	}
	checkCanceled(t, j, rep, n)
}

func (s *suite) shellMetacharacters(t *testing.T) {
	j := s.write(t, "shell", `
func echo(s) = exec("printf", "%s", s)

params [{s: "; touch PWNED"}, {s: "$(touch PWNED2) && echo *"}]
`, nil)
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{"; touch PWNED", "$(touch PWNED2) \u0026\u0026 echo *"})
	for _, dir := range []string{j.dir, "."} {
		for _, f := range []string{"PWNED", "PWNED2"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				t.Errorf("%s was created in %s", f, dir)
			}
		}
	}
}

func (s *suite) shippedFiles(t *testing.T) {
	j := s.write(t, "ship", `
func f(name) = exec("sh", "show.sh", name)
ship "show.sh"
ship "data.txt"

params [{name: "data.txt"}, {name: "show.sh"}]
`, map[string]string{
		"show.sh":  "test -f \"$1\" && echo \"{\\\"file\\\": \\\"$1\\\", \\\"lines\\\": $(wc -l < \"$1\")}\"\n",
		"data.txt": "a\nb\nc\n",
	})
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{
		map[string]any{"file": "data.txt", "lines": 3},
		map[string]any{"file": "show.sh", "lines": 1},
	})
}

// countingBackend records the indexes of the tasks its backend receives.
type countingBackend struct {
	rt.Backend
	mu   sync.Mutex
	seen []int
}

func (c *countingBackend) Run(ctx context.Context, job *lang.Job, tasks <-chan rt.Task, r rt.Reporter) error {
	in := make(chan rt.Task)
	go func() {
		defer close(in)
		for t := range tasks {
			c.mu.Lock()
			c.seen = append(c.seen, t.Index)
			c.mu.Unlock()
			select {
			case in <- t:
			case <-ctx.Done():
				return
			}
		}
	}()
	return c.Backend.Run(ctx, job, in, r)
}

func (s *suite) cache(t *testing.T) {
	// Each run of a task is counted in a file of its own.
	tmp := t.TempDir()
	src := func(n int) string {
		var sets []string
		for i := range n {
			sets = append(sets, fmt.Sprintf("{i: %d}", i))
		}
		return fmt.Sprintf(`
func f(i) = exec("sh", "count.sh", i, %q)
ship "count.sh"
params [%s]
combine sum(results)
cache
`, tmp, strings.Join(sets, ", "))
	}
	j := s.write(t, "cache", src(3), map[string]string{"count.sh": `echo x >> "$2/runs-$1"
echo $(($1 * 10))
`})
	rerun := func(n int) (*rt.Report, []int) {
		t.Helper()
		text := "job cache\n\n" + s.opts.Env + "\n\n" + src(n)
		if err := os.WriteFile(j.path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		job, err := lang.Load(j.path)
		if err != nil {
			t.Fatal(err)
		}
		j.job = job
		b := &countingBackend{Backend: s.newBackend(t, j.env)}
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		defer cancel()
		rep, err := rt.Run(ctx, j.cat, b, j.job, j.env, rt.Options{})
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		slices.Sort(b.seen)
		return rep, b.seen
	}
	rep, seen := rerun(3)
	equal(t, "first map results", rep.MapResults, []any{0, 10, 20})
	equal(t, "tasks the backend got on the first run", seen, []int{0, 1, 2})

	// Two more sets: only they reach the backend.
	rep, seen = rerun(5)
	equal(t, "second map results", rep.MapResults, []any{0, 10, 20, 30, 40})
	equal(t, "tasks the backend got on the second run", seen, []int{3, 4})
	if rep.NumCached != 3 || rep.Status != rt.Completed {
		t.Errorf("second run: %d cached, status %s; want 3, Completed", rep.NumCached, rep.Status)
	}
	for i, r := range rows(t, j.cat, rep.JobID) {
		if cached := r.CachedFrom != ""; cached != (i < 3) || r.Status != "Completed" || r.CacheKey == "" {
			t.Errorf("second run's row %d: status %s, cached_from %q, cache_key %q", i, r.Status, r.CachedFrom, r.CacheKey)
		}
	}

	// Every task cached: none reaches the backend, and a remote one starts no worker (its
	// state is saved once it has launched them).
	rep, seen = rerun(5)
	equal(t, "third map results", rep.MapResults, []any{0, 10, 20, 30, 40})
	equal(t, "combined", rep.Combined, 100)
	if len(seen) != 0 || rep.NumCached != 5 {
		t.Errorf("third run: the backend got tasks %v, %d cached; want none, 5", seen, rep.NumCached)
	}
	if row := jobRow(t, j.cat, rep.JobID); row.BackendState != nil {
		t.Errorf("a fully cached run saved a backend state (started workers): %s", row.BackendState)
	}
	for i := range 5 {
		data, _ := os.ReadFile(filepath.Join(tmp, fmt.Sprintf("runs-%d", i)))
		if got := strings.Count(string(data), "x"); got != 1 {
			t.Errorf("task %d ran %d times, want 1", i, got)
		}
	}
}

func (s *suite) resume(t *testing.T) {
	// Task 1 fails while the flag file exists; each run of a task is counted in a file of its own.
	tmp := t.TempDir()
	flag := filepath.Join(tmp, "fail")
	os.WriteFile(flag, nil, 0o644)
	j := s.write(t, "resume", fmt.Sprintf(`
func f(i) = exec("sh", "count.sh", i, %q, %q)
ship "count.sh"

params [{i: 0}, {i: 1}, {i: 2}]

combine sum(results)
`, tmp, flag), map[string]string{"count.sh": `echo x >> "$2/runs-$1"
if [ "$1" = 1 ] && [ -e "$3" ]; then exit 2; fi
echo $(($1 * 10))
`})
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "first map results", rep.MapResults, []any{0, nil, 20})
	os.Remove(flag)

	row := jobRow(t, j.cat, rep.JobID)
	newBackend := func(env *lang.Env) (rt.Backend, error) {
		if env.Name != j.env.Name {
			t.Errorf("resume picked env %s, want %s", env.Name, j.env.Name)
		}
		return s.newBackend(t, env), nil
	}
	rep2, err := rt.Resume(context.Background(), j.cat, newBackend, row, rt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.JobID != rep.JobID || rep2.Status != rt.Completed || rep2.NumTasks != 3 {
		t.Errorf("resumed: id %s status %s tasks %d", rep2.JobID, rep2.Status, rep2.NumTasks)
	}
	equal(t, "resumed map results", rep2.MapResults, []any{0, 10, 20})
	equal(t, "resumed combined", rep2.Combined, 30)
	for i, want := range []int{1, 2, 1} {
		data, _ := os.ReadFile(filepath.Join(tmp, fmt.Sprintf("runs-%d", i)))
		if got := strings.Count(string(data), "x"); got != want {
			t.Errorf("task %d ran %d times, want %d", i, got, want)
		}
	}
	for i, r := range rows(t, j.cat, rep.JobID) {
		if r.Status != "Completed" {
			t.Errorf("row %d: %s", i, r.Status)
		}
	}
	if jr := jobRow(t, j.cat, rep.JobID); jr.Status != "Completed" || string(jr.Result) != "30" || jr.Error != "" {
		t.Errorf("job row: status %s result %s error %q", jr.Status, jr.Result, jr.Error)
	}
}

func (s *suite) lostWorker(t *testing.T) {
	if s.opts.LoseWorker == nil {
		t.Skip("the backend cannot lose a worker")
	}
	const n = 12
	// Tasks of 1.5 s: the worker is lost after the first ends, while the others still run
	// (with 0.5 s the whole job could end before a Slurm array task showed as running).
	j := s.slowJob(t, "lostworker", n, "1.5")
	b := s.newBackend(t, j.env)
	var once sync.Once
	var lose sync.WaitGroup
	defer lose.Wait() // its errors belong to this test
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	rep, err := rt.Run(ctx, j.cat, b, j.job, j.env, rt.Options{Progress: func(c rt.Counts) {
		if c.Done >= 1 {
			once.Do(func() { lose.Add(1); go func() { defer lose.Done(); s.opts.LoseWorker(t, b) }() })
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]any, n)
	for i := range want {
		want[i] = i
	}
	equal(t, "map results", rep.MapResults, want)
	if rep.Status != rt.Completed {
		t.Errorf("status %s", rep.Status)
	}
}

// poisonTask: a task that kills its worker every time ends Failed with WorkerLost once its
// retries are spent; the tasks that shared a worker with it still complete, and the job ends.
func (s *suite) poisonTask(t *testing.T) {
	if !s.opts.SeparateWorkers {
		t.Skip("the backend runs tasks in the driver's process: a task that kills its worker kills the run")
	}
	j := s.write(t, "poison", `
func f(i) = exec("sh", "-c", "if [ \"$1\" = 2 ]; then kill -9 $PPID; sleep 30; fi; echo \"$1\"", "sh", i)

params map(0..5, ({i: #}))
`, nil)
	rep := s.run(t, j, context.Background(), rt.Options{})
	equal(t, "map results", rep.MapResults, []any{0, 1, nil, 3, 4, 5})
	if rep.Status != rt.Failed || rep.NumFailed != 1 {
		t.Errorf("status %s, %d failed; want Failed with 1 failed task", rep.Status, rep.NumFailed)
	}
	rs := rows(t, j.cat, rep.JobID)
	if len(rs) != 6 {
		t.Fatalf("%d rows", len(rs))
	}
	if r := rs[2]; r.Status != "Failed" || r.Exception != "WorkerLost" || r.Attempt < 2 {
		t.Errorf("poison task row: status %s, exception %q (%s), attempt %d; want Failed, WorkerLost, attempt >= 2",
			r.Status, r.Exception, r.Message, r.Attempt)
	}
	for i, r := range rs {
		if i != 2 && r.Status != "Completed" {
			t.Errorf("row %d: %s %s %s", i, r.Status, r.Exception, r.Message)
		}
	}
}

// Load writes the job file src and the files beside it into a directory of the test's, loads
// the job and its default env, and opens a fresh catalog there, closed when the test ends: the
// start of a test that runs a job of its own.
func Load(t testing.TB, src string, files map[string]string) (*lang.Job, *lang.Env, *catalog.Catalog) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "job.mf")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	job, err := lang.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env, err := job.DefaultEnv("")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return job, env, cat
}

// PeakRSS is the process's peak resident set size in bytes (Linux's VmHWM), 0 where it is not
// known: for benchmarks and memory tests.
func PeakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// FromEnv makes the backend of env as `mapflow run` does (rt.NewBackend): the newBackend of Run
// for a backend that needs nothing else.
func FromEnv(t testing.TB, env *lang.Env) rt.Backend {
	t.Helper()
	b, err := rt.NewBackend(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// MainWithWorker is a TestMain for a remote backend's tests: when needed (a cluster to test
// against), it builds the mapflow binary from cmd (a path like "../../cmd/mapflow") for the
// cluster's workers to run, names it in $MAPFLOW_WORKER_BINARY (the test binary is not it),
// runs the tests and exits.
func MainWithWorker(m *testing.M, needed bool, cmd string) {
	if !needed || os.Getenv("MAPFLOW_WORKER_BINARY") != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "mapflow-worker-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "mapflow")
	build := exec.Command("go", "build", "-o", bin, cmd)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mapflow for the workers:", err)
		os.Exit(1)
	}
	os.Setenv("MAPFLOW_WORKER_BINARY", bin)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
