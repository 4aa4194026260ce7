package runtime

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
)

// Status is a task's or a job's state as the catalog records it.
type Status string

// Task and job states, as the catalog names them.
const (
	Pending   Status = catalog.StatusPending
	Running   Status = catalog.StatusRunning
	Completed Status = catalog.StatusCompleted
	Failed    Status = catalog.StatusFailed
	Canceled  Status = catalog.StatusCanceled
)

// TaskName is the name of the task of func fn with the given index: "add-0", the key of the
// combiner's tasks map and of Python combiners' keyword arguments.
func TaskName(fn string, index int) string { return fn + "-" + strconv.Itoa(index) }

// Final tells whether s is a state a job or task ends in.
func (s Status) Final() bool { return s == Completed || s == Failed || s == Canceled }

// Task is one parameter set of a job, numbered in the order of the params list.
type Task struct {
	Index  int
	Name   string         // TaskName: "<func>-<index>", the key of the combiner's `tasks` map
	Params map[string]any // JSON-like values
	// ParamsJSON is Params encoded once by the planner; backends that stage tasks remotely
	// send these bytes as they are.
	ParamsJSON []byte
	// Attempt is the number of attempts already made (0 for a fresh task; more when a task
	// is re-run after a lost worker).
	Attempt int
}

// Result is the outcome of one attempt of one task.
type Result struct {
	Index   int
	Attempt int // 1 for the first attempt
	Status  Status
	Host    string
	Start   time.Time
	End     time.Time

	Value any // the result when Completed: JSON-like
	// ValueJSON is Value encoded as JSON when the backend has it already (the Executor encodes
	// on its worker; a remote worker sends the bytes); nil makes the driver encode Value.
	ValueJSON []byte

	Exception string // when Failed: TypeError, KeyError, ExitError, TimeoutError, WorkerLost, ...
	Message   string
	Traceback string
	ExitCode  *int // exec tasks only

	Stdout []byte // exec tasks only, bounded (see BoundedBuffer)
	Stderr []byte
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// TaskStarted: an attempt began (Result has Index, Attempt, Host, Start). Backends may omit
	// it for tasks that finish at once; TaskFinished carries Start anyway.
	TaskStarted EventKind = iota
	// TaskRetrying: an attempt failed and the task will be tried again.
	TaskRetrying
	// TaskFinished: the task's last attempt ended; Result is final.
	TaskFinished
)

// Event is what a backend reports about a task.
type Event struct {
	Kind   EventKind
	Result *Result
}

// Reporter receives a backend's events. It is safe for concurrent use; the driver records
// every event in the catalog. Report takes ownership of the event's Result: the backend must
// not use it afterwards (the driver recycles Results; see NewResult).
type Reporter interface {
	Report(Event)
}

// Backend runs the tasks of a job somewhere: goroutines and processes here, YARN containers,
// EC2 hosts. A backend is made from its env block's options (see Register and NewBackend).
type Backend interface {
	// Run executes every task received on tasks until the channel is closed and drained,
	// reporting exactly one TaskFinished event per task it received. It returns when every
	// received task has finished, or when ctx is cancelled (then unfinished tasks need not be
	// reported: the driver marks them Canceled). An error means the backend itself failed
	// (not a task); tasks finished before it stay recorded.
	Run(ctx context.Context, job *lang.Job, tasks <-chan Task, r Reporter) error
}

// resultPool recycles Results: a million-task job would otherwise allocate a million of them.
var resultPool = sync.Pool{New: func() any { return new(Result) }}

// NewResult returns a zeroed Result, recycled from one the driver has finished with when it
// can. Backends may also allocate Results themselves.
func NewResult() *Result { return resultPool.Get().(*Result) }

// releaseResult recycles a Result the driver has finished with.
func releaseResult(r *Result) {
	*r = Result{}
	resultPool.Put(r)
}

type jobIDKey struct{}

// WithJobID returns ctx carrying the catalog id of the job being run; the driver gives it to
// Backend.Run, so that remote staging, application names and instance tags can name the job
// as the catalog does.
func WithJobID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, jobIDKey{}, id)
}

// JobID is the job id WithJobID put in ctx, or "" when there is none (a backend run outside
// the driver).
func JobID(ctx context.Context) string {
	id, _ := ctx.Value(jobIDKey{}).(string)
	return id
}

// Reattacher is a Backend whose work goes on without its driver (a YARN application, EC2
// hosts), so that a new driver can pick it up again. Run saves what Reattach needs with
// SaveState; Resume then calls Reattach with the tasks not Completed, instead of Run.
type Reattacher interface {
	Backend
	// Reattach reports, as Run does, every task received on tasks, taking the results the
	// earlier run's remote work recorded or records, and running afresh those it never will.
	Reattach(ctx context.Context, job *lang.Job, state []byte, tasks <-chan Task, r Reporter) error
}

// Feed returns a closed channel holding tasks: a known list of tasks (those a re-attached run
// ended without, say) to give Backend.Run.
func Feed(tasks []Task) <-chan Task {
	ch := make(chan Task, len(tasks))
	for _, t := range tasks {
		ch <- t
	}
	close(ch)
	return ch
}

// Stopper is a backend whose remote work can be stopped without its driver: `mapflow cancel`
// of a job whose driver is gone kills its YARN application or terminates its hosts, found from
// the state its run saved (SaveState).
type Stopper interface {
	Stop(ctx context.Context, state []byte) error
}

// ErrDetached is the cause of a run's cancellation when the driver leaves the remote work
// running: the catalog could not take its results, and a later `mapflow resume` re-attaches
// to fetch them. A Reattacher whose ctx ends with this cause (see Detached) returns without
// killing its application or terminating its hosts, once it has saved its state.
var ErrDetached = errors.New("the driver detached; the remote work goes on")

// Detached tells whether ctx ended because the driver detached from the remote work.
func Detached(ctx context.Context) bool { return errors.Is(context.Cause(ctx), ErrDetached) }

type saveStateKey struct{}

// SaveState records state in the job's catalog row, for a later Reattach. It is a no-op for a
// backend run outside the driver.
func SaveState(ctx context.Context, state []byte) error {
	if save, ok := ctx.Value(saveStateKey{}).(func([]byte) error); ok {
		return save(state)
	}
	return nil
}
