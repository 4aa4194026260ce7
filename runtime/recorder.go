package runtime

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mapflow/mapflow/catalog"
)

// Recorder tuning. A fast job's rows are written once, when they finish; a row that stays
// unfinished for pendingDelay is written as it stands, so slow jobs show Pending and Running
// rows. Writes go in transactions of at most maxBatch rows; a smaller batch waits until the
// writer is idle and either holds writeRows rows or writeEvery has passed since the last
// write, so that tasks finishing one by one (programs) do not cost a transaction each.
// maxBatch and maxQueue bound the driver's memory whatever the job's size: 20,000 rows a batch
// and 8,192 queued events ran the million-task job as fast as 50,000 and 32,768 did, with
// about 70 MB less peak RSS (with the catalog's smaller page cache, 255 MB became 120 MB and
// 3.48 s became 3.37 s, medians of five).
const (
	pendingDelay  = 200 * time.Millisecond
	tickEvery     = 50 * time.Millisecond
	maxBatch      = 20000
	writeRows     = 1000
	writeEvery    = 50 * time.Millisecond
	maxQueue      = 1 << 13 // events held before Report blocks the backend
	progressEvery = 100 * time.Millisecond
	// maxPendingRows bounds the unfinished tasks with rows: past it, a task waiting to run
	// gets no Pending row (a remote job stages all its tasks at once, and a million Pending
	// rows, each rewritten when its task ends, doubled the catalog's work); it gets its row
	// when it starts or ends.
	maxPendingRows = 10000
	// maxLive bounds the tasks planned and not finished: the planner waits for tasks to end
	// past it, so a backend that takes tasks as fast as it is given them (a remote one stages
	// them all) does not hold the state of a whole job of millions in the driver.
	maxLive = 1 << 18
)

// store is what the recorder writes to: *catalog.Catalog, or a fake in tests.
type store interface {
	PutTasks(ctx context.Context, rows []catalog.Task) error
	PutAttempts(ctx context.Context, rows []catalog.Task) error
	PutLogs(ctx context.Context, logs []catalog.Log) error
}

type itemKind uint8

const (
	itemPlan      itemKind = iota // a task was handed to the backend
	itemUnplanned                 // a task that will not run (the job was canceled first)
	itemStarted                   // TaskStarted
	itemRetrying                  // TaskRetrying
	itemFinished                  // TaskFinished
	itemCached                    // a task that reuses an earlier task's result (hit)
)

// item is one entry of the recorder's queue: a planned task or a backend's event.
type item struct {
	kind   itemKind
	index  int
	name   string
	params []byte
	key    string // the cache key, when the run records them
	res    *Result
	hit    *catalog.CacheHit // itemCached's
}

// taskState is what the recorder knows of a task that has not finished.
type taskState struct {
	index   int
	name    string
	params  []byte
	key     string
	status  Status
	host    string
	attempt int
	start   time.Time
	gen     uint32 // bumped on every change of status
	flushed bool   // the row for the current status has been written
	hasRow  bool   // some row of it has been written: it counts in rowsLive
}

// dirty is an entry of the queue of rows waiting for their pendingDelay.
type dirty struct {
	st  *taskState
	gen uint32
	at  time.Time
}

// batch is one round of catalog writes.
type batch struct {
	tasks    []catalog.Task
	attempts []catalog.Task
	logs     []catalog.Log
}

func (b *batch) empty() bool { return len(b.tasks) == 0 && len(b.attempts) == 0 && len(b.logs) == 0 }

// recorder turns planned tasks and backend events into catalog rows, batching the writes, and
// keeps the map results that the report and the combiner need. Report and plan are safe for
// concurrent use; all the rest runs on the recorder's own goroutine (loop), and the catalog
// writes on a writer goroutine, so evaluating, building rows and writing them overlap.
type recorder struct {
	jobID    string
	st       store
	progress func(Counts)
	onError  func(error) // called once with the first write error

	mu      sync.Mutex
	notFull sync.Cond
	queue   []item
	closed  bool
	// inFlight counts the tasks planned and not finished; plan waits while it is maxLive
	// (when bounded), until unbound.
	inFlight  int
	bounded   bool
	freedLive int // owned by loop: tasks finished since it last took from inFlight
	wake      chan struct{}
	done      chan struct{}

	// Owned by loop.
	live         map[int]*taskState
	freeStates   []*taskState // finished states, reused: a fast job allocates none per task
	pending      []dirty
	rowsLive     int // unfinished tasks with a row written
	cur          *batch
	writes       chan *batch
	free         chan *batch
	writerDone   chan struct{}
	res          *results
	earlierDone  int // tasks Completed in an earlier run of the job (resume)
	finished     int
	failed       int
	causes       map[string]int // the failed tasks' "Exception: message", up to maxCauses of them
	canceled     int
	cached       int // tasks that reused an earlier run's result
	total        int // tasks planned or written so far, and earlier ones
	lastProgress time.Time
	lastSend     time.Time // when a batch last went to the writer

	writeErr error // set by the writer goroutine; read after writerDone
}

func newRecorder(jobID string, st store, res *results, progress func(Counts), onError func(error)) *recorder {
	r := &recorder{
		jobID:      jobID,
		res:        res,
		st:         st,
		progress:   progress,
		onError:    onError,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		live:       make(map[int]*taskState),
		writes:     make(chan *batch),
		free:       make(chan *batch, 4),
		writerDone: make(chan struct{}),
	}
	r.notFull.L = &r.mu
	r.cur = &batch{}
	return r
}

// start runs the recorder's goroutines.
func (r *recorder) start() {
	go r.writer()
	go r.loop()
}

// Report queues a backend's event; it blocks while the queue is full, which slows the backend
// to the catalog's pace instead of growing memory.
func (r *recorder) Report(ev Event) {
	if ev.Result == nil {
		return
	}
	var k itemKind
	switch ev.Kind {
	case TaskStarted:
		k = itemStarted
	case TaskRetrying:
		k = itemRetrying
	case TaskFinished:
		k = itemFinished
	default:
		return
	}
	r.mu.Lock()
	for len(r.queue) >= maxQueue && !r.closed {
		r.notFull.Wait()
	}
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.queue = append(r.queue, item{kind: k, index: ev.Result.Index, res: ev.Result})
	wake := len(r.queue) == 1
	r.mu.Unlock()
	if wake {
		r.signal()
	}
}

// plan queues planned tasks; it is called before they are handed to the backend, so their
// events always come after.
func (r *recorder) plan(items []item) {
	k := 0
	for i := range items {
		if items[i].kind == itemPlan {
			k++
		}
	}
	r.mu.Lock()
	for (len(r.queue) >= maxQueue || r.bounded && r.inFlight > 0 && r.inFlight+k > maxLive) && !r.closed {
		r.notFull.Wait()
	}
	r.inFlight += k
	wake := len(r.queue) == 0
	r.queue = append(r.queue, items...)
	r.mu.Unlock()
	if wake {
		r.signal()
	}
}

// bound makes plan wait while maxLive tasks are planned and not finished.
func (r *recorder) bound() {
	r.mu.Lock()
	r.bounded = true
	r.mu.Unlock()
}

// unbind ends plan's waits for tasks to finish: once the backend has returned, none will.
func (r *recorder) unbind() {
	r.mu.Lock()
	r.bounded = false
	r.notFull.Broadcast()
	r.mu.Unlock()
}

func (r *recorder) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// close stops taking events: loop drains the queue, marks the tasks that did not finish
// Canceled, writes everything and closes done.
func (r *recorder) close() {
	r.mu.Lock()
	r.closed = true
	r.notFull.Broadcast()
	r.mu.Unlock()
	r.signal()
}

func (r *recorder) loop() {
	defer close(r.done)
	ticker := time.NewTicker(tickEvery)
	defer ticker.Stop()
	var spare []item
	for {
		select {
		case <-r.wake:
		case <-ticker.C:
		}
		for {
			r.mu.Lock()
			items := r.queue
			r.queue = spare[:0]
			closed := r.closed
			r.notFull.Broadcast()
			r.mu.Unlock()
			if len(items) == 0 {
				spare = items
				now := time.Now()
				r.flushPending(now)
				r.maybeProgress(now, false)
				if closed {
					r.finish(now)
					return
				}
				r.send(false)
				break
			}
			now := time.Now()
			for i := range items {
				r.apply(&items[i], now)
				items[i] = item{}
				if len(r.cur.tasks) >= maxBatch {
					r.send(true)
				}
			}
			if r.freedLive > 0 {
				r.mu.Lock()
				r.inFlight -= r.freedLive
				r.notFull.Broadcast()
				r.mu.Unlock()
				r.freedLive = 0
			}
			spare = items
			r.flushPending(now)
			r.maybeProgress(now, false)
			r.send(false)
		}
	}
}

// apply records one queued item.
func (r *recorder) apply(it *item, now time.Time) {
	switch it.kind {
	case itemPlan:
		st := r.newState()
		st.index, st.name, st.params, st.key, st.status = it.index, it.name, it.params, it.key, Pending
		r.live[it.index] = st
		r.total++
		r.markDirty(st, now)
	case itemCached:
		r.total++
		r.finished++
		r.cached++
		// It did not run in this job: no host, start or end; its run time is its source's.
		r.cur.tasks = append(r.cur.tasks, catalog.Task{
			JobID: r.jobID, Index: it.index, Name: it.name, Params: it.params,
			Status: string(Completed), Result: it.hit.Result, CacheKey: it.key,
			CachedFrom: it.hit.From, RunTime: it.hit.RunTime,
		})
		if r.res.keeps(it.index) {
			r.res.set(it.index, DecodeJSON(it.hit.Result))
		}
	case itemUnplanned:
		r.total++
		r.finished++
		r.canceled++
		r.cur.tasks = append(r.cur.tasks, catalog.Task{
			JobID: r.jobID, Index: it.index, Name: it.name, Params: it.params,
			Status: string(Canceled), End: now.UTC(), CacheKey: it.key,
		})
	case itemStarted:
		st := r.live[it.index]
		if st == nil {
			return
		}
		st.status, st.host, st.attempt, st.start = Running, it.res.Host, it.res.Attempt, it.res.Start
		r.markDirty(st, now)
	case itemRetrying:
		st := r.live[it.index]
		if st == nil {
			return
		}
		row := r.row(st, it.res)
		r.cur.attempts = append(r.cur.attempts, row)
		r.addLogs(it.res)
	case itemFinished:
		st := r.live[it.index]
		if st == nil {
			return // a duplicate, or a task this run did not plan
		}
		delete(r.live, it.index)
		r.freedLive++
		st.gen++ // drops it from the pending queue
		if st.hasRow {
			r.rowsLive--
		}
		row := r.row(st, it.res)
		r.cur.tasks = append(r.cur.tasks, row)
		r.addLogs(it.res)
		r.finished++
		switch Status(row.Status) {
		case Completed:
			r.res.set(it.index, it.res.Value)
		case Failed:
			r.failed++
			r.addCause(it.res)
		case Canceled:
			r.canceled++
		}
		r.freeState(st)
	}
	if it.res != nil {
		releaseResult(it.res)
	}
}

// maxCauses bounds how many distinct failures a job's error summary counts.
const maxCauses = 100

// addCause counts a failed task's exception and message, for the job's error.
func (r *recorder) addCause(res *Result) {
	if res == nil {
		return
	}
	msg := strings.Join(strings.Fields(res.Message), " ")
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "..."
	}
	key := res.Exception
	if msg != "" {
		key += ": " + msg
	}
	if r.causes == nil {
		r.causes = map[string]int{}
	}
	if _, ok := r.causes[key]; ok || len(r.causes) < maxCauses {
		r.causes[key]++
	}
}

// causeSummary says what the failed tasks failed of, the most common first: once for each
// cause, however many tasks it failed (a module that does not import fails them all).
func (r *recorder) causeSummary() string {
	type cause struct {
		key string
		n   int
	}
	var all []cause
	for k, n := range r.causes {
		all = append(all, cause{k, n})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].key < all[j].key
	})
	var parts []string
	for i, c := range all {
		if i == 2 {
			parts = append(parts, fmt.Sprintf("and %d other causes", len(all)-2))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d %s)", c.key, c.n, Plural(c.n, "task", "tasks")))
	}
	return strings.Join(parts, ", ")
}

// Plural is one when n is 1, else many: "1 task", "2 tasks".
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// newState returns a cleared state, reusing a finished one when it can.
func (r *recorder) newState() *taskState {
	if n := len(r.freeStates); n > 0 {
		st := r.freeStates[n-1]
		r.freeStates = r.freeStates[:n-1]
		return st
	}
	return &taskState{}
}

// freeState keeps a finished task's state for reuse. Its gen is kept and only ever grows, so
// entries of the pending queue that still point to it no longer match.
func (r *recorder) freeState(st *taskState) {
	if len(r.freeStates) >= 1<<16 {
		return
	}
	gen := st.gen
	*st = taskState{gen: gen}
	r.freeStates = append(r.freeStates, st)
}

// row builds the catalog row of a task's attempt.
func (r *recorder) row(st *taskState, res *Result) catalog.Task {
	row := catalog.Task{
		JobID: r.jobID, Index: st.index, Name: st.name, Params: st.params,
		Status: string(res.Status), Host: res.Host, Attempt: res.Attempt,
		Start: res.Start.UTC(), End: res.End.UTC(),
		Exception: res.Exception, Message: res.Message, Traceback: res.Traceback,
		ExitCode: res.ExitCode, CacheKey: st.key,
	}
	if res.Status == Completed {
		row.Result = res.ValueJSON
		if row.Result == nil {
			var err error
			if row.Result, err = MarshalJSON(res.Value); err != nil {
				row.Status, row.Result = string(Failed), nil
				row.Exception = "ValueError"
				row.Message = "the result cannot be stored as JSON: " + err.Error()
				res.Status, res.Value = Failed, nil
			}
		}
	}
	return row
}

func (r *recorder) addLogs(res *Result) {
	if len(res.Stdout) > 0 {
		r.cur.logs = append(r.cur.logs, catalog.Log{JobID: r.jobID, Index: res.Index, Attempt: res.Attempt, Stream: "stdout", Data: res.Stdout})
	}
	if len(res.Stderr) > 0 {
		r.cur.logs = append(r.cur.logs, catalog.Log{JobID: r.jobID, Index: res.Index, Attempt: res.Attempt, Stream: "stderr", Data: res.Stderr})
	}
}

func (r *recorder) markDirty(st *taskState, now time.Time) {
	st.gen++
	st.flushed = false
	r.pending = append(r.pending, dirty{st: st, gen: st.gen, at: now})
}

// flushPending writes the rows of unfinished tasks whose current status has waited
// pendingDelay unwritten.
func (r *recorder) flushPending(now time.Time) {
	cutoff := now.Add(-pendingDelay)
	n := 0
	for n < len(r.pending) && !r.pending[n].at.After(cutoff) {
		d := r.pending[n]
		n++
		if d.st.gen != d.gen || d.st.flushed {
			continue
		}
		if !d.st.hasRow {
			if d.st.status == Pending && r.rowsLive >= maxPendingRows {
				continue
			}
			d.st.hasRow = true
			r.rowsLive++
		}
		d.st.flushed = true
		row := catalog.Task{
			JobID: r.jobID, Index: d.st.index, Name: d.st.name, Params: d.st.params,
			Status: string(d.st.status), Host: d.st.host, Attempt: d.st.attempt, CacheKey: d.st.key,
		}
		if d.st.status == Running {
			row.Start = d.st.start.UTC()
		}
		r.cur.tasks = append(r.cur.tasks, row)
		if len(r.cur.tasks) >= maxBatch {
			r.send(true)
		}
	}
	if n > 0 {
		rest := copy(r.pending, r.pending[n:])
		clear(r.pending[rest:])
		r.pending = r.pending[:rest]
	}
}

// send hands the current batch to the writer: always when wait is set, else only if the
// writer is idle and the batch is worth a transaction (writeRows rows, or writeEvery since the
// last write), so batches grow while it is busy.
func (r *recorder) send(wait bool) {
	if r.cur.empty() {
		return
	}
	if wait {
		r.writes <- r.cur
	} else {
		if len(r.cur.tasks)+len(r.cur.attempts) < writeRows && time.Since(r.lastSend) < writeEvery {
			return
		}
		select {
		case r.writes <- r.cur:
		default:
			return
		}
	}
	r.lastSend = time.Now()
	select {
	case b := <-r.free:
		r.cur = b
	default:
		r.cur = &batch{tasks: make([]catalog.Task, 0, 256)}
	}
}

func (r *recorder) writer() {
	defer close(r.writerDone)
	ctx := context.Background()
	for b := range r.writes {
		if r.writeErr == nil {
			var err error
			if len(b.tasks) > 0 {
				err = r.st.PutTasks(ctx, b.tasks)
			}
			if err == nil && len(b.attempts) > 0 {
				err = r.st.PutAttempts(ctx, b.attempts)
			}
			if err == nil && len(b.logs) > 0 {
				err = r.st.PutLogs(ctx, b.logs)
			}
			if err != nil {
				r.writeErr = err
				if r.onError != nil {
					r.onError(err)
				}
			}
		}
		clear(b.tasks)
		clear(b.attempts)
		clear(b.logs)
		b.tasks, b.attempts, b.logs = b.tasks[:0], b.attempts[:0], b.logs[:0]
		select {
		case r.free <- b:
		default:
		}
	}
}

// finish marks every task still unfinished Canceled, writes what is left and stops the writer.
func (r *recorder) finish(now time.Time) {
	for _, st := range r.live {
		row := catalog.Task{
			JobID: r.jobID, Index: st.index, Name: st.name, Params: st.params,
			Status: string(Canceled), Host: st.host, Attempt: st.attempt, End: now.UTC(),
			CacheKey: st.key,
		}
		if st.status == Running {
			row.Start = st.start.UTC()
		}
		r.cur.tasks = append(r.cur.tasks, row)
		r.finished++
		r.canceled++
		if len(r.cur.tasks) >= maxBatch {
			r.send(true)
		}
	}
	clear(r.live)
	r.pending = nil
	r.send(true)
	close(r.writes)
	<-r.writerDone
	r.res.grow(r.total)
	r.maybeProgress(now, true)
}

func (r *recorder) maybeProgress(now time.Time, force bool) {
	if r.progress == nil || (!force && now.Sub(r.lastProgress) < progressEvery) {
		return
	}
	r.lastProgress = now
	r.progress(Counts{Done: r.earlierDone + r.finished, Failed: r.failed, Cached: r.cached, Total: r.total})
}
