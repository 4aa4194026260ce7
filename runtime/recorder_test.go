package runtime

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mapflow/mapflow/catalog"
)

// fakeStore keeps the rows the recorder writes, as upserts.
type fakeStore struct {
	mu       sync.Mutex
	puts     int // PutTasks calls
	rows     int // rows passed to PutTasks
	tasks    map[int]catalog.Task
	attempts []catalog.Task
	logs     []catalog.Log
}

func (s *fakeStore) PutTasks(ctx context.Context, rows []catalog.Task) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tasks == nil {
		s.tasks = map[int]catalog.Task{}
	}
	s.puts++
	s.rows += len(rows)
	for _, r := range rows {
		s.tasks[r.Index] = r
	}
	return nil
}

func (s *fakeStore) PutAttempts(ctx context.Context, rows []catalog.Task) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts = append(s.attempts, rows...)
	return nil
}

func (s *fakeStore) PutLogs(ctx context.Context, logs []catalog.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = append(s.logs, logs...)
	return nil
}

func (s *fakeStore) status(i int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tasks[i].Status
}

func planItems(from, to int) []item {
	var items []item
	for i := from; i < to; i++ {
		items = append(items, item{kind: itemPlan, index: i, name: "f-" + strconv.Itoa(i), params: []byte(`{}`)})
	}
	return items
}

func TestRecorderWritesFastTasksOnce(t *testing.T) {
	const n = 50000
	var st fakeStore
	rec := newRecorder("j", &st, newResults(true), nil, nil)
	rec.start()
	for i := 0; i < n; i += 100 {
		rec.plan(planItems(i, i+100))
		for k := i; k < i+100; k++ {
			rec.Report(Event{Kind: TaskFinished, Result: &Result{Index: k, Attempt: 1, Status: Completed, Value: k, ValueJSON: []byte(strconv.Itoa(k))}})
		}
	}
	rec.close()
	<-rec.done
	if st.rows != n || len(st.tasks) != n {
		t.Errorf("PutTasks got %d rows for %d tasks in %d calls", st.rows, len(st.tasks), st.puts)
	}
	for i := 0; i < n; i++ {
		if rec.res.at(i) != i || st.tasks[i].Status != "Completed" {
			t.Fatalf("task %d: result %v status %s", i, rec.res.at(i), st.tasks[i].Status)
		}
	}
	t.Logf("%d rows in %d PutTasks calls", st.rows, st.puts)
}

func TestRecorderWritesSlowTasksAsTheyGo(t *testing.T) {
	var st fakeStore
	var mu sync.Mutex
	var last [3]int
	rec := newRecorder("j", &st, newResults(false), func(c Counts) {
		mu.Lock()
		last = [3]int{c.Done, c.Failed, c.Total}
		mu.Unlock()
	}, nil)
	rec.start()
	rec.plan(planItems(0, 2))
	waitFor(t, func() bool { return st.status(0) == "Pending" && st.status(1) == "Pending" })

	start := time.Now()
	rec.Report(Event{Kind: TaskStarted, Result: &Result{Index: 0, Attempt: 1, Host: "h", Start: start}})
	waitFor(t, func() bool { return st.status(0) == "Running" })
	rec.Report(Event{Kind: TaskRetrying, Result: &Result{Index: 0, Attempt: 1, Status: Failed, Exception: "ExitError", Stderr: []byte("boom")}})
	rec.Report(Event{Kind: TaskStarted, Result: &Result{Index: 0, Attempt: 2, Host: "h", Start: start}})
	rec.Report(Event{Kind: TaskFinished, Result: &Result{Index: 0, Attempt: 2, Status: Completed, Value: "x"}})
	waitFor(t, func() bool { return st.status(0) == "Completed" })
	rec.close()
	<-rec.done

	if got := st.tasks[0]; got.Attempt != 2 || string(got.Result) != `"x"` || got.Name != "f-0" || string(got.Params) != `{}` {
		t.Errorf("row 0: %+v", got)
	}
	if got := st.tasks[1]; got.Status != "Canceled" {
		t.Errorf("row 1 (never run): %+v", got)
	}
	if len(st.attempts) != 1 || st.attempts[0].Attempt != 1 || st.attempts[0].Exception != "ExitError" {
		t.Errorf("attempts: %+v", st.attempts)
	}
	if len(st.logs) != 1 || st.logs[0].Stream != "stderr" || string(st.logs[0].Data) != "boom" {
		t.Errorf("logs: %+v", st.logs)
	}
	if want := [3]int{2, 0, 2}; last != want {
		t.Errorf("last progress %v, want %v", last, want)
	}
}

func TestRecorderBoundsPendingRows(t *testing.T) {
	const n = maxPendingRows + 5000
	var st fakeStore
	rec := newRecorder("j", &st, newResults(false), nil, nil)
	rec.start()
	for i := 0; i < n; i += 1000 {
		rec.plan(planItems(i, i+1000))
	}
	count := func(status string) int {
		st.mu.Lock()
		defer st.mu.Unlock()
		k := 0
		for _, r := range st.tasks {
			if r.Status == status {
				k++
			}
		}
		return k
	}
	waitFor(t, func() bool { return count("Pending") == maxPendingRows })
	time.Sleep(3 * pendingDelay)
	if got := count("Pending"); got != maxPendingRows {
		t.Fatalf("%d Pending rows for %d waiting tasks, want %d", got, n, maxPendingRows)
	}
	// A task without a row gets its Running row when it starts, past the bound.
	last := n - 1
	rec.Report(Event{Kind: TaskStarted, Result: &Result{Index: last, Attempt: 1, Host: "h", Start: time.Now()}})
	waitFor(t, func() bool { return st.status(last) == "Running" })
	for i := range n {
		rec.Report(Event{Kind: TaskFinished, Result: &Result{Index: i, Attempt: 1, Status: Completed, Value: i}})
	}
	rec.close()
	<-rec.done
	if got := count("Completed"); got != n {
		t.Errorf("%d Completed rows of %d", got, n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func BenchmarkRecorder(b *testing.B) {
	var st fakeStore
	rec := newRecorder("j", &st, newResults(false), nil, nil)
	st.tasks = map[int]catalog.Task{}
	rec.start()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		k := min(i+64, b.N)
		rec.plan(planItems(i, k))
		for j := i; j < k; j++ {
			rec.Report(Event{Kind: TaskFinished, Result: &Result{Index: j, Status: Completed, ValueJSON: []byte("1")}})
		}
	}
	rec.close()
	<-rec.done
}
