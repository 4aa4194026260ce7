package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
)

// ErrCanceled is what Worker.Run returns when the driver canceled the job.
var ErrCanceled = errors.New("the job was canceled")

// ErrIdle is what Worker.Run returns when it stopped after Idle without work.
var ErrIdle = errors.New("no work for a while: the driver may be gone; mapflow resume runs what is left")

// Worker runs a staged job's tasks: the body of `mapflow worker`.
type Worker struct {
	Store Store
	// ID names this worker in its claims (a YARN container id, an EC2 instance id); it must
	// be unique among the job's workers.
	ID string
	// Host is recorded as the host of every task it runs.
	Host string
	// Dir is a directory of its own for the shipped files and the tasks' working directories.
	Dir string
	// Threads is how many chunks it runs at once; 0 takes the manifest's, else one per CPU.
	Threads int
	// Poll is how often it looks for new chunks and for a cancel; 0 is DefaultPoll.
	Poll time.Duration
	// Idle, when positive, stops the worker (ErrIdle) once it has run no chunk for that long:
	// a driver that died leaves its workers waiting for chunks that never come, and a job
	// array's workers would hold their nodes for good.
	Idle time.Duration
	// Log, when set, receives a line per chunk.
	Log io.Writer
}

// Run claims and runs chunks until none is left to claim, then returns nil; ErrCanceled when
// the job was canceled; another error when the staging cannot be read or written.
func (w *Worker) Run(ctx context.Context) error {
	data, err := w.Store.Get(ctx, manifestName)
	if err != nil {
		return fmt.Errorf("worker %s: read the job's manifest: %w", w.ID, err)
	}
	ms, err := decodeLines[Manifest](data)
	if err != nil || len(ms) != 1 {
		return fmt.Errorf("worker %s: bad manifest: %v", w.ID, err)
	}
	m := ms[0]
	f, err := lang.Parse(m.ScriptPath, []byte(m.Script))
	if err != nil {
		return fmt.Errorf("worker %s: %w", w.ID, err)
	}
	job, err := lang.CheckStaged(f)
	if err != nil {
		return fmt.Errorf("worker %s: %w", w.ID, err)
	}
	ship := filepath.Join(w.Dir, "ship")
	for _, s := range m.Ship {
		data, err := w.Store.Get(ctx, shipDir+"/"+s.Path)
		if err != nil {
			return fmt.Errorf("worker %s: fetch shipped %s: %w", w.ID, s.Path, err)
		}
		p := filepath.Join(ship, filepath.FromSlash(s.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, s.Mode|0o400); err != nil {
			return err
		}
	}
	work := filepath.Join(w.Dir, "work")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	env, err := job.DefaultEnv(m.Env)
	if err != nil {
		return fmt.Errorf("worker %s: %w", w.ID, err)
	}
	ex := &rt.Executor{Job: job, Host: w.Host, ShipDir: ship, WorkRoot: work, JobID: m.JobID}
	ex.SetPython(env)
	defer ex.Close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	threads := w.Threads
	if threads <= 0 {
		threads = m.Threads
	}
	if threads <= 0 {
		threads = goruntime.NumCPU()
	}
	sc := &scanner{store: w.Store, id: w.ID, poll: w.poll()}
	var busy atomic.Int64 // chunks running
	var last atomic.Int64 // when a chunk last started or ended, in Unix nanoseconds
	last.Store(time.Now().UnixNano())
	idle := func() bool {
		return w.Idle > 0 && busy.Load() == 0 && time.Since(time.Unix(0, last.Load())) > w.Idle
	}
	go w.watch(ctx, cancel, idle)
	var wg sync.WaitGroup
	errs := make(chan error, threads)
	// A re-run (run > 1) runs alone in this process: a loss during it is charged to its running
	// task, so it must not be a task of another chunk that killed the worker. Otherwise a
	// healthy chunk that shares a worker with one that kills it would be charged each time.
	var alone sync.RWMutex
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slot := ex.NewSlot()
			defer slot.Close()
			for {
				chunk, run, err := sc.claim(ctx)
				if err != nil || chunk < 0 {
					errs <- err
					return
				}
				lock, unlock := alone.RLock, alone.RUnlock
				if run > 1 {
					lock, unlock = alone.Lock, alone.Unlock
				}
				busy.Add(1)
				last.Store(time.Now().UnixNano())
				lock()
				err = w.runChunk(ctx, ex, slot, chunk, run)
				unlock()
				last.Store(time.Now().UnixNano())
				busy.Add(-1)
				if err != nil {
					errs <- err
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if errors.Is(context.Cause(ctx), ErrCanceled) {
		return ErrCanceled
	}
	if errors.Is(context.Cause(ctx), ErrIdle) {
		return ErrIdle
	}
	for err := range errs {
		if err != nil {
			return fmt.Errorf("worker %s: %w", w.ID, err)
		}
	}
	return nil
}

func (w *Worker) poll() time.Duration {
	if w.Poll > 0 {
		return w.Poll
	}
	return DefaultPoll
}

// watch cancels ctx with ErrCanceled once the driver writes the cancel object, and with
// ErrIdle once idle says the worker has had no work for Idle.
func (w *Worker) watch(ctx context.Context, cancel context.CancelCauseFunc, idle func() bool) {
	t := time.NewTicker(w.poll())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := w.Store.Get(ctx, cancelName); err == nil {
				cancel(ErrCanceled)
				return
			}
			if idle() {
				cancel(ErrIdle)
				return
			}
		}
	}
}

// partEvery is how often a chunk's first run writes the results it has so far, so that the
// driver's progress and catalog move while a chunk of slow tasks runs. (A variable for tests.)
var partEvery = 2 * time.Second

// runChunk runs the tasks of a claimed chunk and writes their results: those it has every
// partEvery in parts, the rest in the run's final object. A re-run (run > 1: earlier runs were
// lost with their workers) skips the tasks that have results already and runs one task at a
// time, writing each task's results as it finishes, so that if this worker dies too, the task
// that was running is known, and only it is charged for the loss.
func (w *Worker) runChunk(ctx context.Context, ex *rt.Executor, slot *rt.Slot, chunk, run int) error {
	data, err := w.Store.Get(ctx, chunkObject(chunk))
	if err != nil {
		return fmt.Errorf("read chunk %d: %w", chunk, err)
	}
	tasks, err := decodeLines[taskLine](data)
	if err != nil {
		return fmt.Errorf("read chunk %d: %w", chunk, err)
	}
	var done map[int]bool
	var losses map[int]int
	if run > 1 {
		if done, losses, err = w.lostRuns(ctx, chunk, run, tasks); err != nil {
			return err
		}
	}
	rec := &lineRecorder{ctx: ctx}
	var todo []rt.Task
	for _, tl := range tasks {
		if done[tl.Index] {
			continue
		}
		params, ok := rt.DecodeJSON(tl.Params).(map[string]any)
		if !ok {
			params = map[string]any{}
		}
		// Each loss of a worker while the task may have been running counts as an attempt.
		// A lost worker is not the task's fault the first time, so it may be lost once more
		// than its retries allow before it counts as the cause.
		lost := losses[tl.Index]
		t := rt.Task{Index: tl.Index, Name: tl.Name, Params: params, ParamsJSON: tl.Params, Attempt: tl.Attempt + lost}
		if lost > ex.Job.Retries+1 {
			now := time.Now()
			rec.lines = append(rec.lines, resultLine{Index: t.Index, Attempt: t.Attempt, Status: rt.Failed,
				Host: w.Host, Start: now.UnixNano(), End: now.UnixNano(), Exception: "WorkerLost",
				Message: fmt.Sprintf("task %s was running when its worker was lost, %d times (retries %d)", t.Name, lost, ex.Job.Retries)})
			continue
		}
		todo = append(todo, t)
	}
	part := 0
	putPart := func() error {
		rec.mu.Lock()
		empty := len(rec.lines) == 0
		rec.mu.Unlock()
		if empty {
			return nil
		}
		part++
		return w.putLines(ctx, resultPartObject(chunk, run, part), rec)
	}
	if run > 1 {
		for _, t := range todo {
			slot.RunAll(ctx, rt.Feed([]rt.Task{t}), rec)
			if ctx.Err() != nil {
				return nil // canceled: the driver marks what did not finish
			}
			if err := putPart(); err != nil {
				return err
			}
		}
	} else {
		// The results so far go out every partEvery while the chunk runs.
		stop := make(chan struct{})
		parts := make(chan error, 1)
		go func() {
			t := time.NewTicker(partEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					parts <- nil
					return
				case <-t.C:
					if err := putPart(); err != nil && ctx.Err() == nil {
						parts <- err
						return
					}
				}
			}
		}()
		slot.RunAll(ctx, rt.Feed(todo), rec)
		close(stop)
		if err := <-parts; err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := w.putLines(ctx, resultObject(chunk, run), rec); err != nil {
		return err
	}
	if w.Log != nil {
		fmt.Fprintf(w.Log, "worker %s: chunk %d run %d: %d tasks\n", w.ID, chunk, run, len(tasks))
	}
	return nil
}

// putLines writes the lines rec gathered since the last put as one object.
func (w *Worker) putLines(ctx context.Context, name string, rec *lineRecorder) error {
	rec.mu.Lock()
	lines := rec.lines
	rec.lines = nil
	rec.mu.Unlock()
	out, err := encodeLines(lines)
	if err != nil {
		return err
	}
	if len(out) == 0 {
		// A run whose tasks were all written in parts ends with an empty object; HDFS (as
		// colinmarc/hdfs writes it) never completes an empty file, so it holds a blank line.
		out = []byte("\n")
	}
	if err := w.Store.Put(ctx, name, out); err != nil {
		return fmt.Errorf("write results %s: %w", name, err)
	}
	return nil
}

// lostRuns reads what the lost earlier runs of a chunk left: the tasks with results, and for
// each task how many losses it is charged. The first run writes its results every partEvery,
// so its loss is charged to every task without results (any may have been running); each
// re-run writes a task's results as it finishes, so its loss is charged to the first task it
// did not finish.
func (w *Worker) lostRuns(ctx context.Context, chunk, run int, tasks []taskLine) (map[int]bool, map[int]int, error) {
	names, err := listChunks(ctx, w.Store, resultsDir, chunk, chunk+1)
	if err != nil {
		return nil, nil, err
	}
	byRun := map[int][]string{}
	for _, name := range names {
		if c, r, _, ok := parseRunName(name); ok && c == chunk && r < run {
			byRun[r] = append(byRun[r], name)
		}
	}
	done := map[int]bool{}
	losses := map[int]int{}
	for _, t := range tasks {
		losses[t.Index] = 1 // run 1
	}
	for r := 1; r < run; r++ {
		for _, name := range byRun[r] {
			data, err := w.Store.Get(ctx, resultsDir+"/"+name)
			if err != nil {
				return nil, nil, err
			}
			lines, err := decodeLines[resultLine](data)
			if err != nil {
				return nil, nil, fmt.Errorf("results %s: %w", name, err)
			}
			for _, l := range lines {
				if !l.Retry {
					done[l.Index] = true
				}
			}
		}
		if r == 1 {
			continue
		}
		for _, t := range tasks {
			if !done[t.Index] {
				losses[t.Index]++
				break
			}
		}
	}
	return done, losses, nil
}

// lineRecorder keeps the outcome of every attempt, as result lines.
type lineRecorder struct {
	// ctx is the worker's: once it ends (the driver canceled the job, or the worker was told
	// to stop, as Slurm's scancel and time limit do with SIGTERM), results are not recorded.
	// The tasks cut short then are not the tasks' failures: the driver marks them Canceled,
	// or, the worker being lost, they run again.
	ctx   context.Context
	mu    sync.Mutex
	lines []resultLine
}

func (l *lineRecorder) Report(e rt.Event) {
	if e.Kind == rt.TaskStarted || e.Result.Status == rt.Canceled || (l.ctx != nil && l.ctx.Err() != nil) {
		return
	}
	if l.ctx != nil && e.Result.Status == rt.Failed && termed(e.Result.Message) {
		// A scheduler that stops a worker (Slurm at its time limit, scancel) sends SIGTERM
		// to its tasks too, and a task may die of it before the worker hears its own: that
		// is the worker's end, not the task's failure. Give the worker's signal a second.
		select {
		case <-l.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	line := toLine(e.Result, e.Kind == rt.TaskRetrying)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

// termed tells whether a task's failure message says SIGTERM ended it.
func termed(msg string) bool {
	return strings.Contains(msg, "signal 15") || strings.Contains(msg, "SIGTERM") || strings.Contains(msg, "signal: terminated")
}

// scanner finds chunks to claim; it is shared by a worker's threads.
type scanner struct {
	store Store
	id    string
	poll  time.Duration

	mu sync.Mutex
	// from is the first chunk that may still need a claim: every earlier one has results.
	from int
	// blank holds when each claim was first seen with no owner written in it.
	blank map[string]time.Time
	// fresh holds chunks the last look found unclaimed, after the one it claimed: the next
	// claims try them before looking again.
	fresh []int
	// chunks is the number of chunks once END has been read (0 before): tasks/ need not be
	// listed again.
	chunks int
	// owners holds the owner read from each claim: once written it does not change, and a
	// worker looking for work would otherwise read every claim still out, at every look.
	owners map[string]string
}

// claimGrace is how long a claim may show no owner before it counts as abandoned: a worker
// killed between creating its claim and writing its id leaves the file empty for good (on
// HDFS its lease is open, and what it wrote is not visible), while a live one writes its id
// within milliseconds.
var claimGrace = 10 * time.Second

// abandoned tells whether the claim object name, with content owner, was left without an
// owner by a worker that died while writing it.
func (s *scanner) abandoned(name string, owner []byte) bool {
	if len(strings.TrimSpace(string(owner))) > 0 {
		return false
	}
	if s.blank == nil {
		s.blank = map[string]time.Time{}
	}
	first, ok := s.blank[name]
	if !ok {
		s.blank[name] = time.Now()
		return false
	}
	return time.Since(first) > claimGrace
}

// owner reads the worker id written in a claim; nothing when the claim has none (yet) or is
// gone.
func (s *scanner) owner(ctx context.Context, name string) ([]byte, error) {
	if id, ok := s.owners[name]; ok {
		return []byte(id), nil
	}
	owner, err := s.store.Get(ctx, name)
	if errors.Is(err, ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(owner))) > 0 {
		if s.owners == nil {
			s.owners = map[string]string{}
		}
		s.owners[name] = string(owner)
	}
	return owner, nil
}

// lostErr is why a worker declared lost (lost/ID) stops.
func (s *scanner) lostErr() error { return fmt.Errorf("worker %s was declared lost; stopping", s.id) }

// maxFresh bounds the chunks a look keeps to claim next without looking again.
const maxFresh = 64

// claim returns a chunk and run this worker now holds, or chunk -1 when nothing is left to
// claim (every chunk up to END has results or a live claim) or ctx ended.
func (s *scanner) claim(ctx context.Context) (chunk, run int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// First the chunks the last look found unclaimed: a claim is one conditional create,
	// where a look lists claims/, results/ and lost/ (whose cost grows with the job's chunks
	// on a directory or HDFS store).
	if len(s.fresh) > 0 && s.id != "" {
		// A worker given up for lost must stop claiming, fresh chunks too: its replacement
		// would run them again.
		// One GET of its own name: cheaper than listing lost/ (on S3, a twelfth of a LIST).
		_, err := s.store.Get(ctx, lostDir+"/"+s.id)
		if err == nil {
			return -1, 0, s.lostErr()
		}
		if !errors.Is(err, ErrNotExist) {
			return -1, 0, err
		}
	}
	for len(s.fresh) > 0 && ctx.Err() == nil {
		n := s.fresh[0]
		s.fresh = s.fresh[1:]
		err := s.store.Create(ctx, claimObject(n, 1), []byte(s.id))
		if err == nil {
			return n, 1, nil
		}
		if !errors.Is(err, ErrExist) {
			return -1, 0, fmt.Errorf("claim chunk %d: %w", n, err)
		}
	}
	for {
		if ctx.Err() != nil {
			return -1, 0, nil
		}
		st, err := s.read(ctx)
		if err != nil {
			return -1, 0, err
		}
		open := false // some chunk is claimed by a live worker and has no results yet
		for n := s.from; n < st.chunks; n++ {
			k := st.claims[n]
			if st.results[n] > 0 { // a later run's claim may still be out; the first results count
				if n == s.from {
					s.from++
				}
				continue
			}
			if k > 0 {
				name := claimObject(n, k)
				owner, err := s.owner(ctx, name)
				if err != nil {
					return -1, 0, err
				}
				if !st.lost[strings.TrimSpace(string(owner))] && !s.abandoned(name, owner) {
					open = true
					continue
				}
			}
			err := s.store.Create(ctx, claimObject(n, k+1), []byte(s.id))
			if err == nil {
				s.fresh = s.fresh[:0]
				for m := n + 1; m < st.chunks && len(s.fresh) < maxFresh; m++ {
					if st.claims[m] == 0 && st.results[m] == 0 {
						s.fresh = append(s.fresh, m)
					}
				}
				return n, k + 1, nil
			}
			if !errors.Is(err, ErrExist) {
				return -1, 0, fmt.Errorf("claim chunk %d: %w", n, err)
			}
			open = true // another worker took it
		}
		if st.end && !open {
			return -1, 0, nil
		}
		if !st.end || open {
			// Wait for more chunks, or for a claim to end (its worker may be lost).
			select {
			case <-ctx.Done():
				return -1, 0, nil
			case <-time.After(s.poll):
			}
		}
	}
}

// state is what a scan of the staging directory found.
type state struct {
	chunks  int
	end     bool
	claims  map[int]int // chunk -> its latest run claimed
	results map[int]int // chunk -> a run with results (the latest)
	lost    map[string]bool
}

func (s *scanner) read(ctx context.Context) (*state, error) {
	st := &state{claims: map[int]int{}, results: map[int]int{}, lost: map[string]bool{}}
	if s.chunks > 0 {
		// END was read: the chunks are all staged, and their number known.
		st.end, st.chunks = true, s.chunks
	} else {
		var err error
		if st.chunks, st.end, err = stagedChunks(ctx, s.store, s.from); err != nil {
			return nil, err
		}
		if st.end {
			s.chunks = st.chunks
		}
	}
	// Every chunk before from has results: only the later ones are listed, and what is
	// known of the earlier ones' claims is forgotten.
	forgetBefore(s.owners, s.from)
	forgetBefore(s.blank, s.from)
	for dir, m := range map[string]map[int]int{claimsDir: st.claims, resultsDir: st.results} {
		names, err := listChunks(ctx, s.store, dir, s.from, st.chunks)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if c, r, part, ok := parseRunName(name); ok && part == 0 && r > m[c] {
				m[c] = r
			}
		}
	}
	lost, err := s.store.List(ctx, lostDir, "")
	if err != nil {
		return nil, err
	}
	for _, id := range lost {
		st.lost[id] = true
	}
	if s.id != "" && st.lost[s.id] {
		// Whoever watches the workers gave this one up (its container was reported dead
		// while the process lived on): its chunks are being run again, so it must stop
		// claiming, or it would race its own replacements.
		return nil, s.lostErr()
	}
	return st, nil
}

// Finished tells whether every task of the staged job has results: its chunks are all staged
// (END) and each has a results object. The YARN ApplicationMaster asks this to tell a job
// that ran from one whose workers gave up.
func Finished(ctx context.Context, s Store) (bool, error) {
	st, err := (&scanner{store: s}).read(ctx)
	if err != nil || !st.end {
		return false, err
	}
	for n := range st.chunks {
		if st.results[n] == 0 {
			return false, nil
		}
	}
	return true, nil
}

// OpenClaims returns the chunks of the staged job that a worker holds a claim on and that have
// no results yet, with the id each claim's worker wrote ("" when none yet).
func OpenClaims(ctx context.Context, s Store) (map[int]string, error) {
	st, err := (&scanner{store: s}).read(ctx)
	if err != nil {
		return nil, err
	}
	open := map[int]string{}
	for c, run := range st.claims {
		if st.results[c] > 0 {
			continue
		}
		owner, err := s.Get(ctx, claimObject(c, run))
		if err != nil && !errors.Is(err, ErrNotExist) {
			return nil, err
		}
		open[c] = strings.TrimSpace(string(owner))
	}
	return open, nil
}

// StagedChunks returns how many chunks of tasks the staged job has so far, and whether that
// is all of them (the driver wrote END).
func StagedChunks(ctx context.Context, s Store) (chunks int, end bool, err error) {
	return stagedChunks(ctx, s, 0)
}

// Canceled tells whether the driver canceled the staged job.
func Canceled(ctx context.Context, s Store) bool {
	_, err := s.Get(ctx, cancelName)
	return err == nil
}
