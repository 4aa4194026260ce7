package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func openTemp(t testing.TB) (*Catalog, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "dir", "catalog.db")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c, path
}

func intp(i int) *int { return &i }

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

func testJob(id, name string, submitted time.Time) *Job {
	return &Job{
		ID: id, Name: name, ScriptPath: "examples/add.mf", ScriptSHA256: "abc123",
		ScriptText: "job add\n", EnvName: "local", EnvKind: "local", Status: StatusRunning,
		NumTasks: 3, SubmittedAt: submitted,
	}
}

func TestSchemaVersionMatchesMigrations(t *testing.T) {
	if SchemaVersion != len(migrations) {
		t.Fatalf("SchemaVersion = %d, but there are %d migrations", SchemaVersion, len(migrations))
	}
}

func TestOpenCreatesAndMigrates(t *testing.T) {
	c, path := openTemp(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("catalog file mode = %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("catalog dir mode = %v, want 0700", di.Mode().Perm())
	}
	ctx := context.Background()
	var v int
	var mode string
	if err := c.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if err := c.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if v != SchemaVersion || mode != "wal" {
		t.Errorf("user_version = %d, journal_mode = %q; want %d, wal", v, mode, SchemaVersion)
	}
	for _, table := range []string{"jobs", "tasks", "task_attempts", "logs"} {
		var n int
		if err := c.r.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}

	// Opening again applies nothing and keeps the data.
	if err := c.CreateJob(ctx, testJob("j1", "add", t0)); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.FindJob(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
}

func TestOpenMigratesEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateJob(context.Background(), testJob("j1", "add", t0)); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	c, path := openTemp(t)
	err := c.write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	if err == nil || !strings.Contains(err.Error(), "newer than this mapflow knows") {
		t.Fatalf("Open of a newer catalog: err = %v, want one saying it is newer", err)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("MAPFLOW_CATALOG", "/x/c.db")
	t.Setenv("XDG_DATA_HOME", "/data")
	t.Setenv("HOME", "/home/u")
	check := func(want string) {
		t.Helper()
		got, err := DefaultPath()
		if err != nil || got != want {
			t.Errorf("DefaultPath() = %q, %v; want %q", got, err, want)
		}
	}
	check("/x/c.db")
	t.Setenv("MAPFLOW_CATALOG", "")
	check("/data/mapflow/catalog.db")
	t.Setenv("XDG_DATA_HOME", "relative/ignored")
	check("/home/u/.local/share/mapflow/catalog.db")
}

func TestJobRoundTrip(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	j := testJob("j1", "add", t0)
	if err := c.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	got, err := c.FindJob(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(j, got); d != "" {
		t.Errorf("created job differs (-want +got):\n%s", d)
	}

	j.Status = StatusCompleted
	j.GitCommit = "deadbeef"
	j.StartedAt = t0.Add(time.Second)
	j.FinishedAt = t0.Add(3 * time.Second)
	j.Result = []byte(`70`)
	j.Error = "2 of 3 tasks failed"
	j.DriverPID = 4242
	j.DriverHost = "box"
	j.Heartbeat = t0.Add(2 * time.Second)
	j.CancelRequested = true
	j.BackendState = []byte(`{"app":"application_1_0001"}`)
	if err := c.UpdateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	got, err = c.FindJob(ctx, "add")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(j, got); d != "" {
		t.Errorf("updated job differs (-want +got):\n%s", d)
	}

	if err := c.UpdateJob(ctx, testJob("nope", "add", t0)); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("UpdateJob of a missing job: err = %v, want ErrJobNotFound", err)
	}
	if err := c.CreateJob(ctx, j); err == nil {
		t.Error("CreateJob of an existing id succeeded")
	}
}

func TestFindJobAndJobs(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	for i, name := range []string{"add", "train", "add"} {
		if err := c.CreateJob(ctx, testJob(fmt.Sprintf("j%d", i), name, t0.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	j, err := c.FindJob(ctx, "add")
	if err != nil || j.ID != "j2" {
		t.Errorf("FindJob(add) = %v, %v; want the latest, j2", j, err)
	}
	j, err = c.FindJob(ctx, "j0")
	if err != nil || j.ID != "j0" {
		t.Errorf("FindJob(j0) = %v, %v; want j0", j, err)
	}
	if _, err := c.FindJob(ctx, "missing"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("FindJob(missing): err = %v, want ErrJobNotFound", err)
	}
	jobs, err := c.Jobs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	if d := cmp.Diff([]string{"j2", "j1", "j0"}, ids); d != "" {
		t.Errorf("Jobs order (-want +got):\n%s", d)
	}
	if jobs, err := c.Jobs(ctx, 2); err != nil || len(jobs) != 2 {
		t.Errorf("Jobs(2) = %d jobs, %v", len(jobs), err)
	}
	// NAME~N is the run N before the latest.
	for ref, want := range map[string]string{"add~0": "j2", "add~1": "j0", "train~0": "j1"} {
		if j, err := c.FindJob(ctx, ref); err != nil || j.ID != want {
			t.Errorf("FindJob(%s) = %v, %v; want %s", ref, j, err, want)
		}
	}
	_, err = c.FindJob(ctx, "add~2")
	if !errors.Is(err, ErrJobNotFound) || !strings.Contains(err.Error(), "which has 2 runs") {
		t.Errorf("FindJob(add~2): err = %v, want ErrJobNotFound saying add has 2 runs", err)
	}
	for _, ref := range []string{"add~-1", "add~x", "add~+1"} {
		if _, err := c.FindJob(ctx, ref); !errors.Is(err, ErrJobNotFound) {
			t.Errorf("FindJob(%s): err = %v, want ErrJobNotFound", ref, err)
		}
	}
}

func TestHeartbeatAndCancel(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	if err := c.CreateJob(ctx, testJob("j1", "add", t0)); err != nil {
		t.Fatal(err)
	}
	cancel, err := c.Heartbeat(ctx, "j1", t0.Add(time.Second))
	if err != nil || cancel {
		t.Fatalf("Heartbeat = %v, %v; want false, nil", cancel, err)
	}
	if err := c.RequestCancel(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	cancel, err = c.Heartbeat(ctx, "j1", t0.Add(2*time.Second))
	if err != nil || !cancel {
		t.Fatalf("Heartbeat after RequestCancel = %v, %v; want true, nil", cancel, err)
	}
	j, err := c.FindJob(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if !j.Heartbeat.Equal(t0.Add(2*time.Second)) || !j.CancelRequested {
		t.Errorf("job heartbeat %v cancel %v", j.Heartbeat, j.CancelRequested)
	}
	if _, err := c.Heartbeat(ctx, "nope", t0); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("Heartbeat of a missing job: err = %v", err)
	}
	if err := c.RequestCancel(ctx, "nope"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("RequestCancel of a missing job: err = %v", err)
	}
}

func collectTasks(t *testing.T, c *Catalog, jobID string) []*Task {
	t.Helper()
	var got []*Task
	if err := c.Tasks(context.Background(), jobID, func(task *Task) error {
		got = append(got, task)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestTaskRoundTrip(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	want := []*Task{
		{JobID: "j1", Index: 0, Name: "add-0", Params: []byte(`{"x":20,"y":20}`), Status: StatusCompleted,
			Host: "h1", Attempt: 1, Start: t0, End: t0.Add(1500 * time.Millisecond), Result: []byte(`40`)},
		{JobID: "j1", Index: 1, Name: "add-1", Params: []byte(`{"x":"a"}`), Status: StatusFailed,
			Host: "h2", Attempt: 2, Start: t0, End: t0.Add(time.Microsecond),
			Exception: "ExitError", Message: "exit status 3", Traceback: "line 1\nline 2", ExitCode: intp(3)},
		{JobID: "j1", Index: 2, Name: "add-2", Params: []byte(`{}`), Status: StatusRunning, Attempt: 1, Start: t0,
			ExitCode: intp(0)},
		{JobID: "j1", Index: 3, Params: []byte(`{}`), Status: StatusPending},
	}
	var rows []Task
	for _, w := range want {
		rows = append(rows, *w)
	}
	if err := c.PutTasks(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, collectTasks(t, c, "j1")); d != "" {
		t.Errorf("tasks differ (-want +got):\n%s", d)
	}

	// What SQL sees: NULLs, text times the date functions read, run_time.
	var (
		nulls    int
		runTime  float64
		unix     float64
		startTxt string
		typ      string
	)
	q := func(query string, dst ...any) {
		t.Helper()
		if err := c.r.QueryRowContext(ctx, query).Scan(dst...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	q(`SELECT count(*) FROM tasks WHERE exception IS NULL AND exception_message IS NULL
		AND exception_traceback IS NULL AND result IS NULL AND host IS NULL AND end_time IS NULL
		AND run_time IS NULL AND exit_code IS NULL AND task_name IS NULL`, &nulls)
	if nulls != 1 {
		t.Errorf("the Pending row is not all NULLs (%d rows match)", nulls)
	}
	q(`SELECT run_time, unixepoch(end_time, 'subsec'), start_time, typeof(params) FROM tasks WHERE task_index = 0`,
		&runTime, &unix, &startTxt, &typ)
	if runTime != 1.5 || startTxt != "2026-03-14 15:09:26.535897" || typ != "text" {
		t.Errorf("run_time %v, start_time %q, typeof(params) %q", runTime, startTxt, typ)
	}
	if want := float64(t0.Add(1500*time.Millisecond).UnixMicro()) / 1e6; math.Abs(unix-want) > 0.001 {
		t.Errorf("unixepoch(end_time) = %v, want %v", unix, want)
	}
	var x int
	q(`SELECT json_extract(params, '$.x') FROM tasks WHERE task_index = 0`, &x)
	if x != 20 {
		t.Errorf("json_extract(params, '$.x') = %d", x)
	}

	// Local times are stored as UTC.
	local := Task{JobID: "j2", Status: StatusRunning, Start: t0.In(time.FixedZone("X", 3600))}
	if err := c.PutTasks(ctx, []Task{local}); err != nil {
		t.Fatal(err)
	}
	if got := collectTasks(t, c, "j2"); len(got) != 1 || got[0].Start != t0 {
		t.Errorf("local start time read back as %v, want %v", got[0].Start, t0)
	}
}

func TestPutTasksUpsert(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	pending := make([]Task, 1203) // two full statements and a tail
	for i := range pending {
		pending[i] = Task{JobID: "j1", Index: i, Name: fmt.Sprintf("t%d", i), Params: []byte(fmt.Sprintf(`{"x":%d}`, i)), Status: StatusPending}
	}
	if err := c.PutTasks(ctx, pending); err != nil {
		t.Fatal(err)
	}
	final := []Task{
		{JobID: "j1", Index: 7, Status: StatusCompleted, Host: "h", Attempt: 1, Start: t0, End: t0.Add(time.Second), Result: []byte(`14`)},
		{JobID: "j1", Index: 1202, Name: "renamed", Params: []byte(`{"x":0}`), Status: StatusFailed, Attempt: 2, Exception: "KeyError", Message: "no y"},
	}
	if err := c.PutTasks(ctx, final); err != nil {
		t.Fatal(err)
	}
	got := collectTasks(t, c, "j1")
	if len(got) != len(pending) {
		t.Fatalf("%d rows, want %d", len(got), len(pending))
	}
	want7 := final[0]
	want7.Name, want7.Params = "t7", []byte(`{"x":7}`) // kept from the Pending row
	if d := cmp.Diff(&want7, got[7]); d != "" {
		t.Errorf("task 7 (-want +got):\n%s", d)
	}
	if d := cmp.Diff(&final[1], got[1202]); d != "" {
		t.Errorf("task 1202 (-want +got):\n%s", d)
	}
	if d := cmp.Diff(&pending[8], got[8]); d != "" {
		t.Errorf("task 8 (-want +got):\n%s", d)
	}
	counts, err := c.CountByStatus(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]int{StatusPending: 1201, StatusCompleted: 1, StatusFailed: 1}, counts); d != "" {
		t.Errorf("CountByStatus (-want +got):\n%s", d)
	}
	var results []string
	err = c.CompletedResults(ctx, "j1", func(i int, r []byte) error {
		results = append(results, fmt.Sprintf("%d=%s", i, r))
		return nil
	})
	if err != nil || len(results) != 1 || results[0] != "7=14" {
		t.Errorf("CompletedResults = %v, %v", results, err)
	}
}

func TestPutTasksRejectsBadRows(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	rows := []Task{{JobID: "j1", Index: 0, Status: StatusPending}, {JobID: "j1", Index: 1, Status: "Done"}}
	if err := c.PutTasks(ctx, rows); err == nil || !strings.Contains(err.Error(), `unknown status "Done"`) {
		t.Errorf("PutTasks with a bad status: err = %v", err)
	}
	if err := c.PutTasks(ctx, []Task{{Status: StatusPending}}); err == nil {
		t.Error("PutTasks without a job id succeeded")
	}
	if got := collectTasks(t, c, "j1"); len(got) != 0 {
		t.Errorf("a rejected batch wrote %d rows", len(got))
	}
}

func TestCallbackErrorStops(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	if err := c.PutTasks(ctx, []Task{{JobID: "j", Index: 0, Status: StatusPending}, {JobID: "j", Index: 1, Status: StatusPending}}); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	n := 0
	err := c.Tasks(ctx, "j", func(*Task) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("Tasks with a failing callback: err = %v after %d calls", err, n)
	}
}

func TestAttemptsAndLogs(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	attempts := []Task{
		{JobID: "j1", Index: 4, Params: []byte(`{}`), Status: StatusFailed, Attempt: 2, Start: t0, End: t0.Add(time.Second), Exception: "TimeoutError", Message: "after 1s"},
		{JobID: "j1", Index: 4, Params: []byte(`{}`), Status: StatusFailed, Attempt: 1, Start: t0, End: t0.Add(time.Second), Exception: "WorkerLost", ExitCode: intp(137)},
	}
	if err := c.PutAttempts(ctx, attempts); err != nil {
		t.Fatal(err)
	}
	var got []*Task
	if err := c.Attempts(ctx, "j1", func(t *Task) error { got = append(got, t); return nil }); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]*Task{&attempts[1], &attempts[0]}, got); d != "" {
		t.Errorf("attempts (-want +got):\n%s", d)
	}

	logs := []Log{
		{JobID: "j1", Index: 4, Attempt: 2, Stream: "stderr", Data: []byte("oops\n")},
		{JobID: "j1", Index: 4, Attempt: 1, Stream: "stdout", Data: []byte("first")},
		{JobID: "j1", Index: 4, Attempt: 2, Stream: "stdout", Data: []byte("x")},
	}
	if err := c.PutLogs(ctx, logs); err != nil {
		t.Fatal(err)
	}
	if err := c.PutLogs(ctx, []Log{{JobID: "j1", Index: 4, Attempt: 2, Stream: "stdout", Data: []byte("replaced")}}); err != nil {
		t.Fatal(err)
	}
	gotLogs, err := c.Logs(ctx, "j1", 4)
	if err != nil {
		t.Fatal(err)
	}
	wantLogs := []Log{logs[1], {JobID: "j1", Index: 4, Attempt: 2, Stream: "stdout", Data: []byte("replaced")}, logs[0]}
	if d := cmp.Diff(wantLogs, gotLogs); d != "" {
		t.Errorf("logs (-want +got):\n%s", d)
	}
	if err := c.PutLogs(ctx, []Log{{JobID: "j1", Stream: "stdin"}}); err == nil {
		t.Error("PutLogs accepted stream stdin")
	}
}

func TestCancelUnfinished(t *testing.T) {
	c, _ := openTemp(t)
	ctx := context.Background()
	rows := []Task{
		{JobID: "j1", Index: 0, Status: StatusCompleted, Attempt: 1, Start: t0, End: t0.Add(time.Second), Result: []byte(`1`)},
		{JobID: "j1", Index: 1, Status: StatusRunning, Attempt: 1, Start: t0},
		{JobID: "j1", Index: 2, Status: StatusPending},
		{JobID: "j1", Index: 3, Status: StatusFailed, Attempt: 1, Exception: "KeyError"},
		{JobID: "j2", Index: 0, Status: StatusPending},
	}
	if err := c.PutTasks(ctx, rows); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(90700 * time.Millisecond) // its fraction of a second is below the start's
	n, err := c.CancelUnfinished(ctx, "j1", at)
	if err != nil || n != 2 {
		t.Fatalf("CancelUnfinished = %d, %v; want 2", n, err)
	}
	got := collectTasks(t, c, "j1")
	for i, want := range []string{StatusCompleted, StatusCanceled, StatusCanceled, StatusFailed} {
		if got[i].Status != want {
			t.Errorf("task %d status %s, want %s", i, got[i].Status, want)
		}
	}
	if !got[1].End.Equal(at) || !got[2].End.Equal(at) || !got[0].End.Equal(t0.Add(time.Second)) {
		t.Errorf("end times %v %v %v", got[0].End, got[1].End, got[2].End)
	}
	var rt1 float64
	var rt2 sql.NullFloat64
	if err := c.r.QueryRow(`SELECT (SELECT run_time FROM tasks WHERE job_id='j1' AND task_index=1),
		(SELECT run_time FROM tasks WHERE job_id='j1' AND task_index=2)`).Scan(&rt1, &rt2); err != nil {
		t.Fatal(err)
	}
	if rt1 != 90.7 || rt2.Valid {
		// exactly: julianday arithmetic would be off by microseconds.
		t.Errorf("run_time of the canceled Running task %v (want 90.7), of the Pending one %v (want NULL)", rt1, rt2)
	}
	if counts, _ := c.CountByStatus(ctx, "j2"); counts[StatusPending] != 1 {
		t.Errorf("another job's tasks changed: %v", counts)
	}
}

// TestConcurrentWriters has four Catalog handles, as four drivers would, write the same file
// while a fifth queries it: no error may surface, and every row must land.
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	const (
		writers = 4
		perJob  = 20000
		batch   = 1000
	)
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		writing sync.WaitGroup
		errs    = make(chan error, writers+1)
		done    = make(chan struct{})
	)
	writing.Add(writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer writing.Done()
			c, err := Open(path) // concurrent Opens of a new file migrate it once
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			job := fmt.Sprintf("job%d", w)
			if err := c.CreateJob(ctx, testJob(job, "conc", t0)); err != nil {
				errs <- err
				return
			}
			rows := make([]Task, batch)
			for off := 0; off < perJob; off += batch {
				for i := range rows {
					rows[i] = Task{JobID: job, Index: off + i, Name: "t", Params: []byte(`{"x":1}`),
						Status: StatusCompleted, Host: "h", Attempt: 1, Start: t0, End: t0.Add(time.Second), Result: []byte(`2`)}
				}
				if err := c.PutTasks(ctx, rows); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				if _, err := c.Heartbeat(ctx, job, time.Now()); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	queries := 0
	go func() {
		defer wg.Done()
		var c *Catalog
		for {
			var err error
			if c, err = Open(path); err == nil {
				break
			}
			select {
			case <-done:
				errs <- err
				return
			default:
			}
		}
		defer c.Close()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := c.Jobs(ctx, 0); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
			if _, err := c.CountByStatus(ctx, "job0"); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
			queries++
		}
	}()
	writing.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for w := range writers {
		counts, err := c.CountByStatus(ctx, fmt.Sprintf("job%d", w))
		if err != nil {
			t.Fatal(err)
		}
		if counts[StatusCompleted] != perJob {
			t.Errorf("job%d has %v rows, want %d Completed", w, counts, perJob)
		}
	}
	t.Logf("reader ran %d query pairs meanwhile", queries)
}

func TestAppendTime(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{t0, "2026-03-14 15:09:26.535897"},
		{time.Date(1, 1, 1, 0, 0, 0, 999, time.UTC), "0001-01-01 00:00:00.000000"},
		{time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.FixedZone("E", -3600)), "2027-01-01 00:59:59.999999"},
	} {
		if got := string(appendTime(nil, tc.t)); got != tc.want {
			t.Errorf("appendTime(%v) = %q, want %q", tc.t, got, tc.want)
		}
		back, err := parseTime(sql.NullString{String: tc.want, Valid: true})
		if err != nil || back.Format(timeLayout+".000000") != tc.want {
			t.Errorf("parseTime(%q) = %v, %v", tc.want, back, err)
		}
	}
}
