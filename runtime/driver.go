package runtime

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
)

// Driver tuning.
const (
	taskBuffer     = 4096        // planned tasks waiting for the backend
	planChunk      = 64          // tasks the planner registers with the recorder at a time
	heartbeatEvery = time.Second // catalog.AliveWithin is five of them
)

// ErrCancelRequested is the cause of a run's cancellation by `mapflow cancel`.
var ErrCancelRequested = errors.New("cancel requested")

// ErrDriverAlive is returned by Resume for a job whose driver still runs.
var ErrDriverAlive = errors.New("the job's driver is still running")

// Options tune a run.
type Options struct {
	// Progress, when set, is called with the run's counts at most about ten times a second
	// and once at the end, from one goroutine at a time.
	Progress func(Counts)
	// Cache is the run's --cache or --no-cache; the zero value follows the job file.
	Cache CacheFlag
	// JobID, when set, is the id Run gives the new job instead of a generated one.
	JobID string
	// CombineOutput, when set, receives what a Python combiner writes to its standard output
	// and error.
	CombineOutput io.Writer
}

// Report is what a run gives the CLI.
type Report struct {
	JobID string
	Name  string
	// Status is Completed, Failed or Canceled; or Running when the catalog failed and the
	// driver left the backend's remote work going, for a later Resume.
	Status   Status
	NumTasks int
	// NumFailed counts the tasks that failed in this run.
	NumFailed int
	// NumDone counts the tasks Completed, in this run or (resumed) an earlier one.
	NumDone int
	// NumCached counts the tasks that reused an earlier run's result, in this run or
	// (resumed) an earlier one; Caching says the run looked them up.
	NumCached int
	Caching   bool
	// MapResults holds the results of the first ShownResults tasks in params order; nil for
	// a task that failed or did not run. NumResults is how many tasks there are in all: the
	// catalog has every result.
	MapResults []any
	NumResults int
	Combined   any   // the combiner's result; nil without a combiner or when it failed
	CombineErr error // the combiner's failure
}

// Run runs job in env on backend b, recording the job and every task in cat, and returns the
// report. Task failures, a combiner failure and cancellation are in the report, not the error:
// the error says the driver could not do its part (the catalog failed, the params could not be
// read, the backend broke), and the report, when not nil, still says how far it got.
func Run(ctx context.Context, cat *catalog.Catalog, b Backend, job *lang.Job, env *lang.Env, opts Options) (*Report, error) {
	now := time.Now().UTC()
	id := opts.JobID
	if id == "" {
		id = NewJobID(job.Name, now)
	}
	path := job.Filename
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	sum := sha256.Sum256(job.Source)
	host, _ := os.Hostname()
	row := &catalog.Job{
		ID:           id,
		Name:         job.Name,
		ScriptPath:   path,
		ScriptSHA256: hex.EncodeToString(sum[:]),
		ScriptText:   string(job.Source),
		GitCommit:    gitCommit(ctx, filepath.Dir(path)),
		EnvName:      env.Name,
		EnvKind:      env.Kind,
		Status:       string(Running),
		SubmittedAt:  now,
		StartedAt:    now,
		DriverPID:    os.Getpid(),
		DriverHost:   host,
		Heartbeat:    now,
	}
	if n, ok := job.Params.Count(); ok {
		row.NumTasks = n // known before the tasks are: status shows it while the job runs
	}
	row.Cache = cacheMode(job, opts.Cache)
	d := &driver{cat: cat, backend: b, job: job, env: env, row: row, opts: opts, res: newResults(combinerReads(job))}
	if err := d.setupCache(); err != nil {
		return nil, err
	}
	if err := cat.CreateJob(ctx, row); err != nil {
		return nil, fmt.Errorf("record the job in the catalog: %w", err)
	}
	return d.run(ctx)
}

// Resume finishes a job whose driver ended before it did (killed, or the host went down):
// it parses the job from the script text stored in its row, picks the env the job ran in,
// makes that env's backend with newBackend, and runs under the same job id only the tasks not
// Completed. The report includes the results of the tasks completed before. Resume refuses
// (ErrDriverAlive) while the job's driver still beats.
func Resume(ctx context.Context, cat *catalog.Catalog, newBackend func(*lang.Env) (Backend, error),
	row *catalog.Job, opts Options) (*Report, error) {
	if err := checkDriverGone(row); err != nil {
		return nil, err
	}
	job, env, b, err := storedJob(row, newBackend)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", row.ID, err)
	}
	// The tasks the dead driver was running here may have left processes: they go before
	// their tasks run again beside them. (Remote work goes on without its driver, on purpose.)
	if _, remote := b.(Reattacher); !remote {
		KillStray(row.ID)
	}

	var earlier doneSet
	res := newResults(combinerReads(job))
	err = cat.Tasks(ctx, row.ID, func(t *catalog.Task) error {
		if t.Status == string(Completed) {
			earlier.Add(t.Index)
			if res.keeps(t.Index) {
				res.set(t.Index, DecodeJSON(t.Result))
			}
			if t.CachedFrom != "" {
				earlier.cached++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("resume %s: read its tasks: %w", row.ID, err)
	}

	// A job whose driver died mid-run may have remote work going on to re-attach to; a job
	// that ended (Failed, Canceled) is finished by running its unfinished tasks afresh.
	reattach := !Status(row.Status).Final() && row.BackendState != nil
	d := &driver{cat: cat, backend: b, job: job, env: env, row: row, opts: opts, res: res, earlier: &earlier, reattach: reattach}
	started := row.CacheParts
	if err := d.setupCache(); err != nil {
		return nil, fmt.Errorf("resume %s: %w", row.ID, err)
	}
	if changed := changedParts(started, row.CacheParts); len(changed) > 0 {
		return nil, fmt.Errorf("resume %s: since the job started, %s: its remaining tasks would record another version's results under its cache keys; restore what changed, or run the job afresh (mapflow run)",
			row.ID, strings.Join(changed, ", "))
	}
	now := time.Now().UTC()
	host, _ := os.Hostname()
	row.Status = string(Running)
	row.DriverPID, row.DriverHost, row.Heartbeat = os.Getpid(), host, now
	row.FinishedAt, row.Result, row.Error, row.CancelRequested = time.Time{}, nil, "", false
	if row.StartedAt.IsZero() {
		row.StartedAt = now
	}
	if err := cat.UpdateJob(ctx, row); err != nil {
		return nil, fmt.Errorf("resume %s: %w", row.ID, err)
	}
	if d.keyer != nil {
		// Its tasks that run now are not in cache_index yet.
		if err := cat.UnindexCacheRun(ctx, row.ID); err != nil {
			return nil, fmt.Errorf("resume %s: %w", row.ID, err)
		}
	}
	return d.run(ctx)
}

// storedJob parses the job from the script text stored in its row and makes the backend of
// the env it ran in.
func storedJob(row *catalog.Job, newBackend func(*lang.Env) (Backend, error)) (*lang.Job, *lang.Env, Backend, error) {
	f, err := lang.Parse(row.ScriptPath, []byte(row.ScriptText))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parse its stored script: %w", err)
	}
	job, err := lang.Check(f)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("check its stored script: %w", err)
	}
	env, err := job.DefaultEnv(row.EnvName)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := newBackend(env)
	if err != nil {
		return nil, nil, nil, err
	}
	return job, env, b, nil
}

// Explainer is a backend that can say how its cluster saw a run (Slurm's states, reasons and
// exit codes of the array's tasks), for `mapflow error`.
type Explainer interface {
	Explain(ctx context.Context, state []byte) (string, error)
}

// ExplainRemote is what the job's backend says of its run, when it is an Explainer and the run
// saved a state; "" otherwise.
func ExplainRemote(ctx context.Context, newBackend func(*lang.Env) (Backend, error), row *catalog.Job) (string, error) {
	if row.BackendState == nil {
		return "", nil
	}
	_, _, b, err := storedJob(row, newBackend)
	if err != nil {
		return "", err
	}
	if e, ok := b.(Explainer); ok {
		return e.Explain(ctx, row.BackendState)
	}
	return "", nil
}

// StopRemote stops the remote work of a job whose driver is gone (its YARN application, its
// hosts), when its backend is a Stopper and its run saved a state; else it does nothing.
func StopRemote(ctx context.Context, newBackend func(*lang.Env) (Backend, error), row *catalog.Job) error {
	if row.BackendState == nil {
		return nil
	}
	_, _, b, err := storedJob(row, newBackend)
	if err != nil {
		return fmt.Errorf("stop the remote work of %s: %w", row.ID, err)
	}
	s, ok := b.(Stopper)
	if !ok {
		return nil
	}
	if err := s.Stop(ctx, row.BackendState); err != nil {
		return fmt.Errorf("stop the remote work of %s: %w", row.ID, err)
	}
	return nil
}

// DriverGone tells whether an unfinished job's driver is gone (see catalog.Job.DriverGone).
func DriverGone(row *catalog.Job) bool { return row.DriverGone() }

// checkDriverGone returns ErrDriverAlive when the job is unfinished and its driver alive.
func checkDriverGone(row *catalog.Job) error {
	if Status(row.Status).Final() || DriverGone(row) {
		return nil
	}
	age := time.Since(row.Heartbeat)
	return fmt.Errorf("resume %s: %w (pid %d on %s, last heartbeat %s ago); cancel it with `mapflow cancel %s`, or wait for it",
		row.ID, ErrDriverAlive, row.DriverPID, row.DriverHost, age.Round(100*time.Millisecond), row.ID)
}

// doneSet holds the tasks a resumed job completed before.
type doneSet struct {
	IndexSet
	cached int // how many of them reused an earlier run's result
}

// saveState writes a backend's re-attach state into the job's row.
func (d *driver) saveState(state []byte) error {
	d.row.BackendState = state // read again only after the backend returned
	return d.cat.SetBackendState(context.WithoutCancel(context.Background()), d.row.ID, state)
}

// driver is one run of a job.
type driver struct {
	cat     *catalog.Catalog
	backend Backend
	job     *lang.Job
	env     *lang.Env
	row     *catalog.Job
	opts    Options
	earlier *doneSet // tasks completed before a resume; nil for a new job
	res     *results // the map results: the first ones, or all for a combiner that reads them
	// notStartedFrom is the first task a canceled run stopped reading the params at, with no
	// row written for it or any after it; -1 when every task has a row.
	notStartedFrom int
	// reattach: the backend picks up the remote work of the run whose driver died
	reattach bool
	// keyer computes the tasks' cache keys when the run records them (row.Cache set); reuse:
	// the run looks them up and reuses earlier results.
	keyer *CacheKeyer
	reuse bool
	peer  peerRun // the last run of the same job part, read alongside the planner
	// indexed: the earlier runs of the same job part are in cache_index.
	indexed bool
	// cacheErr is the first failed cache lookup: its tasks ran instead.
	cacheErr error
}

// errCatalog marks a failure to write the catalog.
var errCatalog = errors.New("catalog write failed")

// run runs the job: it executes the tasks on the backend, decides the job's status, combines
// the results and records the job's end.
func (d *driver) run(parent context.Context) (*Report, error) {
	d.notStartedFrom = -1
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	rec, backendErr, planErr := d.execute(ctx, cancel)
	o := d.decide(parent, ctx, rec, backendErr, planErr)
	if o.report.Status != Canceled && o.err == nil && d.job.Combine != nil {
		d.combineResults(parent, rec, o)
	}
	return o.report, d.finish(context.WithoutCancel(parent), rec, o)
}

// outcome is what a run came to: the report, the lines of the job's error, and the error
// returned with the job's id.
type outcome struct {
	report *Report
	errs   []string
	err    error
}

// fail records why the job failed: in the job row as is, and returned with the job's id.
func (o *outcome) fail(id string, err error) {
	o.report.Status = Failed
	o.errs = append(o.errs, err.Error())
	o.err = fmt.Errorf("job %s: %w", id, err)
}

// execute runs the planner, the heartbeat, the recorder and the backend until the backend
// returns and every event is recorded.
func (d *driver) execute(ctx context.Context, cancel context.CancelCauseFunc) (rec *recorder, backendErr, planErr error) {
	// Catalog writes go on after a cancel: that is when the Canceled rows are written.
	dbCtx := context.WithoutCancel(ctx)
	// A backend whose work goes on without its driver is left running when the catalog fails:
	// its results stay in its store, for `mapflow resume` to fetch once the catalog mends.
	_, detach := d.backend.(Reattacher)
	rec = newRecorder(d.row.ID, d.cat, d.res, d.opts.Progress, func(err error) {
		if detach {
			cancel(fmt.Errorf("%w: %w (%w)", errCatalog, err, ErrDetached))
			return
		}
		cancel(fmt.Errorf("%w: %w", errCatalog, err))
	})
	if d.earlier != nil {
		rec.earlierDone = d.earlier.Len()
		rec.total = d.earlier.Len()
		rec.cached = d.earlier.cached
	}
	if !d.reattach {
		// A re-attaching backend reads every task before it collects a result: it may not
		// wait for tasks to end.
		rec.bound()
	}
	rec.start()

	hbStop := make(chan struct{})
	hbDone := make(chan struct{})
	go d.heartbeat(dbCtx, cancel, hbStop, hbDone)

	tasks := make(chan Task, taskBuffer)
	backendDone := make(chan struct{})
	planDone := make(chan error, 1)
	go func() { planDone <- d.plan(ctx, tasks, rec, backendDone) }()

	bctx := context.WithValue(WithJobID(ctx, d.row.ID), saveStateKey{}, d.saveState)
	if re, ok := d.backend.(Reattacher); ok && d.reattach {
		backendErr = re.Reattach(bctx, d.job, d.row.BackendState, tasks, rec)
	} else {
		backendErr = d.backend.Run(bctx, d.job, tasks, rec)
	}
	close(backendDone)
	rec.unbind() // the planner may be waiting for tasks that will not end now
	planErr = <-planDone
	rec.close()
	<-rec.done
	close(hbStop)
	<-hbDone
	return rec, backendErr, planErr
}

// decide is the job's status and error, from how the run ended: the first that applies of a
// catalog failure, Ctrl-C, `mapflow cancel`, the backend's failure, the params' failure, tasks
// the backend never ran, failed tasks.
func (d *driver) decide(parent, ctx context.Context, rec *recorder, backendErr, planErr error) *outcome {
	numTasks := rec.total
	if d.notStartedFrom >= 0 {
		// The tasks without rows count too, when the params know how many there are.
		if n, ok := d.job.Params.Count(); ok && n > numTasks {
			numTasks = n
		}
	}
	o := &outcome{report: &Report{
		JobID:      d.row.ID,
		Name:       d.row.Name,
		NumTasks:   numTasks,
		NumFailed:  rec.failed,
		NumDone:    rec.earlierDone + rec.finished - rec.failed - rec.canceled,
		NumCached:  rec.cached,
		Caching:    d.reuse,
		MapResults: d.res.shown(),
		NumResults: d.res.len(),
	}}
	switch {
	case rec.writeErr != nil:
		o.fail(d.row.ID, fmt.Errorf("%w: %w", errCatalog, rec.writeErr))
	case parent.Err() != nil:
		o.report.Status = Canceled
		o.errs = append(o.errs, "canceled: interrupted")
	case errors.Is(context.Cause(ctx), ErrCancelRequested):
		o.report.Status = Canceled
		o.errs = append(o.errs, "canceled by request")
	case backendErr != nil:
		o.fail(d.row.ID, fmt.Errorf("backend %s: %w", d.env.Kind, backendErr))
	case planErr != nil:
		o.fail(d.row.ID, fmt.Errorf("params: %w", planErr))
	case rec.canceled > 0:
		o.report.Status = Failed
		o.errs = append(o.errs, fmt.Sprintf("%d of %d tasks did not run: the backend stopped early", rec.canceled, rec.total))
	case rec.failed > 0:
		o.report.Status = Failed
	default:
		o.report.Status = Completed
	}
	if line := d.notStartedLine(); line != "" {
		o.errs = append(o.errs, line)
	}
	if d.cacheErr != nil {
		o.errs = append(o.errs, fmt.Sprintf("the cache could not be read, so tasks ran instead: %v", d.cacheErr))
	}
	if rec.failed > 0 {
		msg := fmt.Sprintf("%d of %d tasks failed", rec.failed, rec.total)
		if causes := rec.causeSummary(); causes != "" {
			msg += ": " + causes
		}
		o.errs = append(o.errs, msg)
	}
	return o
}

// combineResults runs the combiner over the results and keeps its result as JSON in the job's
// row; Ctrl-C while it runs cancels the job.
func (d *driver) combineResults(parent context.Context, rec *recorder, o *outcome) {
	r := o.report
	if d.res.len() > combineGCFrom {
		// The combiner's copy of the results is most of what the heap holds from here on, and
		// nearly all of it stays live: collecting at 25% growth instead of 100% keeps the
		// peak near what it truly needs (484 MB of RSS became 383 MB for ten million results).
		defer debug.SetGCPercent(debug.SetGCPercent(25))
	}
	r.Combined, r.CombineErr = d.combine(parent, d.res)
	if r.CombineErr == nil {
		data, err := MarshalJSON(r.Combined)
		if err != nil {
			// The job's result stays NULL: not the JSON written before the value that failed.
			r.CombineErr = fmt.Errorf("the combined result cannot be stored as JSON: %w", err)
			r.Combined = nil
		} else {
			d.row.Result = data
		}
	}
	if r.CombineErr != nil && parent.Err() != nil {
		// Ctrl-C stopped the combiner: every task's row is kept, the job is canceled.
		r.Status, r.CombineErr = Canceled, nil
		o.errs = append(o.errs, "canceled: interrupted while combining")
	}
	if r.CombineErr != nil {
		o.errs = append(o.errs, "combine: "+r.CombineErr.Error())
	}
}

// finish records the job's end in its row, and returns the run's error.
func (d *driver) finish(dbCtx context.Context, rec *recorder, o *outcome) error {
	now := time.Now().UTC()
	if o.report.Status == Canceled {
		// Belt and braces: the recorder wrote a Canceled row for every task it knew of.
		if _, err := d.cat.CancelUnfinished(dbCtx, d.row.ID, now); err != nil && o.err == nil {
			o.err = fmt.Errorf("job %s: mark unfinished tasks canceled: %w", d.row.ID, err)
		}
	}
	d.row.Status = string(o.report.Status)
	d.row.NumTasks = o.report.NumTasks
	d.row.FinishedAt = now
	if _, detach := d.backend.(Reattacher); rec.writeErr != nil && detach && d.row.BackendState != nil {
		// The remote work goes on: the job is not over, its driver is gone.
		o.report.Status, d.row.Status, d.row.FinishedAt = Running, string(Running), time.Time{}
		o.errs = append(o.errs, "the remote work goes on without a driver; once the catalog can be written, mapflow resume "+d.row.ID+" fetches its results")
	}
	d.row.Heartbeat = now
	d.row.Error = strings.Join(o.errs, "; ")
	if err := d.cat.UpdateJob(dbCtx, d.row); err != nil && o.err == nil {
		o.err = fmt.Errorf("job %s: record its end: %w", d.row.ID, err)
	}
	return o.err
}

// plan streams the parameter sets to the backend, registering each task with the recorder
// first. Once the run is canceled or the backend is gone, it goes on reading the params only
// to record the remaining tasks as Canceled, so that the catalog holds every task of the
// job; but past maxCanceledRows such rows it stops reading, and the job's error says from
// which task on none was started: a canceled job of a billion parameter sets must not write a
// billion rows.
func (d *driver) plan(ctx context.Context, tasks chan<- Task, rec *recorder, backendDone <-chan struct{}) error {
	fn := d.job.Func.Name
	stopped := false
	unplanned := 0
	closeTasks := func() {
		if !stopped {
			stopped = true
			close(tasks)
		}
	}
	defer closeTasks()

	chunk := make([]Task, 0, planChunk)
	items := make([]item, 0, planChunk)
	var buf []byte
	flush := func() {
		if len(chunk) == 0 {
			return
		}
		if stopped {
			for i := range items {
				items[i].kind = itemUnplanned
			}
			unplanned += len(items)
			rec.plan(items)
		} else {
			if d.reuse {
				chunk = d.useCache(ctx, chunk, items)
			}
			rec.plan(items)
			for _, t := range chunk {
				if !send(ctx, tasks, t, backendDone) {
					// The rest were registered as planned but will never reach the backend:
					// the recorder marks them Canceled at its end, as every unfinished task.
					closeTasks()
					break
				}
			}
		}
		clear(chunk[:cap(chunk)])
		clear(items)
		chunk, items = chunk[:0], items[:0]
	}
	defer d.peer.close()
	next := 0 // the index after the last set read
	err := d.job.Params.EachContext(ctx, func(index int, set map[string]any) error {
		next = index + 1
		if stopped && unplanned >= maxCanceledRows && len(chunk) == 0 {
			d.notStartedFrom = index
			return errStopPlanning
		}
		if d.earlier != nil && d.earlier.Has(index) {
			return nil // counted in the recorder's total from the start
		}
		var err error
		if buf, err = AppendJSON(buf[:0], set); err != nil {
			buf = append(buf[:0], "null"...)
		}
		params := append([]byte(nil), buf...)
		t := Task{Index: index, Name: TaskName(fn, index), Params: set, ParamsJSON: params}
		chunk = append(chunk, t)
		items = append(items, item{kind: itemPlan, index: index, name: t.Name, params: params, key: d.cacheKey(set)})
		if len(chunk) == planChunk {
			flush()
			if !stopped && (ctx.Err() != nil || isClosed(backendDone)) {
				closeTasks()
			}
		}
		return nil
	})
	flush()
	if err == errStopPlanning {
		err = nil
	}
	if err != nil && ctx.Err() != nil {
		// The cancel stopped the params' evaluation midway: the sets it had not made yet
		// were never started.
		if d.notStartedFrom < 0 {
			d.notStartedFrom = next
		}
		err = nil
	}
	return err
}

// maxCanceledRows is how many Canceled rows the planner writes for the tasks a canceled run
// never started, before it stops reading the params.
const maxCanceledRows = 10000

var errStopPlanning = errors.New("stop planning")

// notStartedLine says which tasks a canceled run never recorded, or "".
func (d *driver) notStartedLine() string {
	if d.notStartedFrom < 0 {
		return ""
	}
	if n, ok := d.job.Params.Count(); ok && n > d.notStartedFrom {
		return fmt.Sprintf("%s tasks not started (from %s-%d on; they have no rows)", Thousands(n-d.notStartedFrom), d.job.Func.Name, d.notStartedFrom)
	}
	return fmt.Sprintf("the tasks from %s-%d on were not started (they have no rows)", d.job.Func.Name, d.notStartedFrom)
}

// Thousands writes n with commas between its groups of three digits: 999,985,792.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + Thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// send hands t to the backend unless the run is canceled or the backend is gone first.
func send(ctx context.Context, tasks chan<- Task, t Task, backendDone <-chan struct{}) bool {
	select {
	case tasks <- t: // the common case, without the costlier three-way select
		return true
	default:
	}
	select {
	case tasks <- t:
		return true
	case <-ctx.Done():
	case <-backendDone:
	}
	return false
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// combineGCFrom is the number of results past which the combiner runs with a tighter GC.
const combineGCFrom = 1 << 20

// combinerReads tells whether job's combiner reads the tasks' results, so that the driver must
// keep them all until the run ends.
func combinerReads(job *lang.Job) bool {
	c := job.Combine
	return c != nil && (c.Warm != nil || c.Uses("results") || c.Uses("tasks"))
}

// combine evaluates the combiner over the successful results in order and, when it reads
// them, every task's result by name.
func (d *driver) combine(ctx context.Context, res *results) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("internal error in the evaluator: %v", p)
		}
	}()
	if spec := d.job.Combine.Warm; spec != nil {
		return d.combinePython(ctx, spec, res)
	}
	vars := map[string]any{}
	if d.job.Combine.Uses("results") {
		n := 0
		res.each(func(_ int, v any) {
			if v != nil {
				n++
			}
		})
		ok := make([]any, 0, n)
		add := func(_ int, v any) {
			if v != nil {
				ok = append(ok, v)
			}
		}
		if d.job.Combine.Uses("tasks") {
			res.each(add)
		} else {
			res.drain(add) // nothing reads the store after this
		}
		vars["results"] = ok
	}
	if d.job.Combine.Uses("tasks") {
		tasks := make(map[string]any, res.len())
		res.each(func(i int, v any) { tasks[TaskName(d.job.Func.Name, i)] = v })
		vars["tasks"] = tasks
	}
	return d.job.Combine.EvalContext(ctx, vars)
}

// combinePython calls a Python combiner with the name of each task that gave a result as a
// keyword argument, its result as the value, in a worker process of its own on this machine.
func (d *driver) combinePython(ctx context.Context, spec *lang.Warm, res *results) (any, error) {
	kwargs := make(map[string]any)
	res.each(func(i int, v any) {
		if v != nil {
			kwargs[TaskName(d.job.Func.Name, i)] = v
		}
	})
	root, err := os.MkdirTemp("", "mapflow-combine-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	shipDir := filepath.Dir(d.job.Filename)
	if abs, err := filepath.Abs(shipDir); err == nil {
		shipDir = abs
	}
	ex := &Executor{Job: d.job, Host: "driver", ShipDir: shipDir, WorkRoot: root, Python: CombinePython(d.env)}
	defer ex.Close()
	v, err := ex.Call(ctx, spec, kwargs, d.opts.CombineOutput)
	if exc, msg, tb, ok := TaskError(err); ok {
		if tb != "" {
			return nil, fmt.Errorf("%s: %s: %s\n%s", describeWarm(spec, ex.Python), exc, msg, tb)
		}
		return nil, fmt.Errorf("%s: %s: %s", describeWarm(spec, ex.Python), exc, msg)
	}
	return v, err
}

// CombinePython is the interpreter a Python combiner runs with, on the driver's machine:
// $MAPFLOW_PYTHON when set, else the env's python setting when the env is local, else
// DefaultPython (a remote env's python names an interpreter on its workers).
func CombinePython(env *lang.Env) string {
	if p := os.Getenv("MAPFLOW_PYTHON"); p != "" {
		return p
	}
	if env != nil && env.Kind == "local" {
		return PythonOf(env)
	}
	return DefaultPython
}

// heartbeat records every heartbeatEvery that the driver is alive, and cancels the run when
// `mapflow cancel` asked for it.
func (d *driver) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	// The beat's own context ends with the run, so a catalog that hangs cannot hold the
	// driver's end.
	ctx, stopBeat := context.WithCancel(ctx)
	defer stopBeat()
	go func() {
		<-stop
		stopBeat()
	}()
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			requested, err := d.cat.Heartbeat(ctx, d.row.ID, now.UTC())
			if err == nil && requested {
				cancel(ErrCancelRequested)
			}
		}
	}
}

// NewJobID makes an id like add-20261125-113412-3f9a: the name, the UTC time, 4 random hex.
func NewJobID(name string, now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return name + "-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// gitCommit returns the commit checked out in the git work tree holding dir, or "".
func gitCommit(ctx context.Context, dir string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
