package remote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
)

// Driver defaults.
const (
	// DefaultPoll is how often the driver looks for new results.
	DefaultPoll = 250 * time.Millisecond
	// maxExprChunk is the largest chunk of expression tasks: a million tasks make 100 chunks,
	// some 300 objects in the store.
	maxExprChunk = 10000
	// minExprChunk is the smallest chunk of expression tasks guided scheduling makes: smaller
	// ones cost more in claims than they save at the job's end.
	minExprChunk = 1000
	// minGuidedChunk is the smallest chunk guided scheduling makes.
	minGuidedChunk = 8
	// stageDelay is how long a partly filled chunk waits for more tasks before it is staged,
	// so that a slow planner still feeds the workers.
	stageDelay = 200 * time.Millisecond
)

// Driver is the driver's side of a staged job: it writes the manifest, the shipped files and
// the tasks to Store, and reports the results the workers write back.
type Driver struct {
	Store Store
	// JobID names the staging (the manifest's job_id).
	JobID string
	// ChunkSize is the most tasks in a chunk, the unit a worker claims; 0 picks one from the
	// function: 8 for programs, 50 for warm functions, maxExprChunk for expressions.
	ChunkSize int
	// Workers is how many workers (threads, in all) will claim chunks; small batches of tasks
	// are cut into this many chunks so that each gets some. 0 is 1.
	Workers int
	// Threads is how many tasks each worker runs at once; 0 is one per CPU of its machine.
	Threads int
	// Poll is how often results are looked for; 0 is DefaultPoll.
	Poll time.Duration
	// Watch, when set, is called at every poll; an error ends Run with that error (the
	// cluster lost the application, every host died).
	Watch func(ctx context.Context) error

	// staged is one past the highest task index staged so far: a result line for any other
	// task (a damaged or foreign results object) is not reported.
	staged atomic.Int64
	// chunks is how many chunks are staged so far: results are listed up to the last.
	chunks atomic.Int64
	// from is the first chunk whose final results object the driver has not read; finals
	// holds the chunks whose final object it has. Results are listed from chunk from on, so
	// a poll's LIST costs the chunks in flight, not the job's.
	from   int
	finals rt.IndexSet
}

// Stage writes the manifest and shipped files: what workers need before any task. envName is
// the env block the job runs in, which the workers read their settings from.
func (d *Driver) Stage(ctx context.Context, job *lang.Job, envName string) error {
	m := Manifest{JobID: d.JobID, ScriptPath: job.Filename, Script: string(job.Source), Env: envName, Threads: d.Threads}
	files, err := rt.ShippedFiles(job)
	if err != nil {
		return fmt.Errorf("stage the job: %w", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f.Path)
		if err == nil {
			err = d.Store.Put(ctx, shipDir+"/"+f.Name, data)
		}
		if err != nil {
			return fmt.Errorf("stage shipped %q: %w", f.Name, err)
		}
		m.Ship = append(m.Ship, ShipFile{Path: f.Name, Mode: f.Mode})
	}
	data, err := encodeLines([]Manifest{m})
	if err != nil {
		return err
	}
	if err := d.Store.Put(ctx, manifestName, data); err != nil {
		return fmt.Errorf("stage the manifest: %w", err)
	}
	return nil
}

// Run stages every task received on tasks, in chunks, and reports each result the workers
// write back, until every received task has finished (nil), ctx ends (its error, after telling
// the workers to stop), or Watch fails. Call Stage first, and start the workers.
func (d *Driver) Run(ctx context.Context, job *lang.Job, tasks <-chan rt.Task, r rt.Reporter) error {
	size := d.ChunkSize
	known := 0 // the job's task count, when the params know it
	least := minGuidedChunk
	if size <= 0 {
		size = maxExprChunk
		switch {
		case job.Func.IsExec():
			size = 8
		case job.Func.WarmFunc() == nil:
			// An expression takes microseconds: a chunk's cost is its objects (tasks, claim,
			// results) and their round trips, so chunks are as large as the job allows,
			// guided when its size is known.
			least = minExprChunk
			if n, ok := job.Params.Count(); ok {
				known = n
			}
		default:
			// A Python function is anything from microseconds to hours: chunks of up to 500
			// tasks, smaller and smaller towards the job's end when its size is known, so
			// that no worker is left with a long tail of slow tasks (guided scheduling);
			// 50 when it is not known.
			size = 50
			if n, ok := job.Params.Count(); ok {
				size, known = 500, n
			}
		}
	}
	poll := d.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	staged := make(chan int, 1) // tasks staged so far, sent when planning ends
	stageErr := make(chan error, 1)
	go func() { stageErr <- d.stage(ctx, tasks, size, least, known, staged) }()

	seen := map[string]bool{}
	var done rt.IndexSet
	total := -1
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if rt.Detached(ctx) {
				d.seal(stageErr)
				return ctx.Err()
			}
			d.cancel()
			// The results already written are the tasks' own: a last look keeps them
			// (Completed, not Canceled).
			lctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = d.collect(lctx, seen, &done, r)
			stop()
			return ctx.Err()
		case err := <-stageErr:
			if err != nil {
				d.cancel()
				return err
			}
			stageErr = nil
		case n := <-staged:
			total = n
		case <-tick.C:
		}
		if err := d.collect(ctx, seen, &done, r); err != nil {
			return err
		}
		if total >= 0 && done.Len() >= total {
			return nil
		}
		if d.Watch != nil {
			if err := d.Watch(ctx); err != nil {
				if ctx.Err() != nil {
					continue
				}
				// The workers may have written their last results just before they ended.
				if cerr := d.collect(ctx, seen, &done, r); cerr == nil && total >= 0 && done.Len() >= total {
					return nil
				}
				d.cancel()
				return err
			}
		}
	}
}

// stage writes the tasks in chunks, then END, and sends how many tasks it staged. Tasks are
// gathered in batches (until size × Workers tasks, stageDelay, or the end of the params) and
// each batch is cut into at least Workers chunks of at most size tasks, so that a small job
// still spreads over every worker and a large one is claimed in large pieces.
func (d *Driver) stage(ctx context.Context, tasks <-chan rt.Task, maxSize, minSize, total int, staged chan<- int) error {
	workers := max(d.Workers, 1)
	var batch []taskLine
	n, count := 0, 0
	// size is the chunk size for the tasks staged next: maxSize, or with total known, what is
	// left split among twice the workers, at least minSize.
	size := func() int {
		if total <= 0 {
			return maxSize
		}
		return max(min((total-count)/(2*workers), maxSize), minSize)
	}
	flush := func() error {
		size := size()
		// At least a chunk per worker, so that a small job still spreads over them all; but
		// expression chunks no smaller than minSize (a thousand workers would otherwise cut
		// every batch into a thousand chunks of a few tasks).
		spread := len(batch)
		if minSize > minGuidedChunk {
			spread = (len(batch) + minSize - 1) / minSize
		}
		chunks := max(min(workers, spread), (len(batch)+size-1)/size)
		for i := range chunks {
			part := batch[len(batch)*i/chunks : len(batch)*(i+1)/chunks]
			data, err := encodeLines(part)
			if err != nil {
				return err
			}
			if err := d.Store.Put(ctx, chunkObject(n), data); err != nil {
				return fmt.Errorf("stage tasks: %w", err)
			}
			n++
			d.chunks.Store(int64(n))
			count += len(part)
		}
		batch = batch[:0]
		return nil
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case t, ok := <-tasks:
			if !ok {
				if err := flush(); err != nil {
					return err
				}
				if err := d.Store.Put(ctx, endName, []byte(strconv.Itoa(n))); err != nil {
					return fmt.Errorf("stage tasks: %w", err)
				}
				staged <- count
				return nil
			}
			if len(batch) == 0 {
				timer.Reset(stageDelay)
			}
			params := t.ParamsJSON
			if params == nil {
				var err error
				if params, err = rt.MarshalJSON(t.Params); err != nil {
					return fmt.Errorf("task %s: params: %w", t.Name, err)
				}
			}
			batch = append(batch, taskLine{Index: t.Index, Name: t.Name, Attempt: t.Attempt, Params: params})
			if int64(t.Index) >= d.staged.Load() {
				d.staged.Store(int64(t.Index) + 1)
			}
			if len(batch) >= size()*workers {
				timer.Stop()
				if err := flush(); err != nil {
					return err
				}
			}
		case <-timer.C:
			if err := flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Collect re-attaches to a staged job whose driver is gone: it ends the staging if that
// driver left it open (sealStaging), then reports the results in the store of every task
// received on tasks, as they land. It returns nil once each has its results, or, when Watch
// says the remote work ended first, the tasks still without results, to be run afresh.
func (d *Driver) Collect(ctx context.Context, tasks <-chan rt.Task, r rt.Reporter) (missing []rt.Task, err error) {
	chunks, err := sealStaging(ctx, d.Store)
	if err != nil {
		return nil, err
	}
	want := map[int]rt.Task{}
	for t := range tasks {
		if t.ParamsJSON != nil {
			t.Params = nil // staging a re-run needs only the JSON; the map is the larger
		}
		want[t.Index] = t
	}
	poll := d.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	seen := map[string]bool{}
	var done rt.IndexSet
	for {
		if err := d.collectOnly(ctx, seen, &done, want, chunks, r); err != nil {
			return nil, err
		}
		if done.Len() == len(want) {
			return nil, nil
		}
		if d.Watch != nil {
			if werr := d.Watch(ctx); werr != nil && ctx.Err() == nil {
				if err := d.collectOnly(ctx, seen, &done, want, chunks, r); err != nil {
					return nil, err
				}
				for i, t := range want {
					if !done.Has(i) {
						missing = append(missing, t)
					}
				}
				sort.Slice(missing, func(a, b int) bool { return missing[a].Index < missing[b].Index })
				return missing, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// collectOnly is collect for the tasks in want alone, of the chunks before upto.
func (d *Driver) collectOnly(ctx context.Context, seen map[string]bool, done *rt.IndexSet, want map[int]rt.Task, upto int, r rt.Reporter) error {
	return d.collectFiltered(ctx, seen, done, func(i int) bool { _, ok := want[i]; return ok }, upto, r)
}

// sealStaging writes END after the chunks a dead driver staged, if it died staging: its
// workers then finish those and end, and Collect finds the tasks never staged missing, to
// be run afresh, instead of the workers waiting for more chunks until they give up (Idle).
// The driver is gone (Resume checks its heartbeat), so no chunk comes after. It returns how
// many chunks there are.
func sealStaging(ctx context.Context, s Store) (int, error) {
	n, end, err := stagedChunks(ctx, s, 0)
	if err != nil {
		return 0, fmt.Errorf("read the staged tasks: %w", err)
	}
	if !end {
		if err := s.Put(ctx, endName, []byte(strconv.Itoa(n))); err != nil {
			return 0, fmt.Errorf("end the staging: %w", err)
		}
	}
	return n, nil
}

// collect reads the result objects not read before and reports their records.
func (d *Driver) collect(ctx context.Context, seen map[string]bool, done *rt.IndexSet, r rt.Reporter) error {
	return d.collectFiltered(ctx, seen, done, func(i int) bool { return i >= 0 && int64(i) < d.staged.Load() }, int(d.chunks.Load()), r)
}

// collectFiltered is collect for the tasks that keep says to keep (all when keep is nil), of
// the chunks before upto.
func (d *Driver) collectFiltered(ctx context.Context, seen map[string]bool, done *rt.IndexSet, keep func(int) bool, upto int, r rt.Reporter) error {
	names, err := listChunks(ctx, d.Store, resultsDir, d.from, upto)
	if err != nil {
		return fmt.Errorf("list results: %w", err)
	}
	defer func() {
		from := d.from
		for d.finals.Has(d.from) {
			d.from++
		}
		if d.from > from {
			forgetBefore(seen, d.from) // never listed again
		}
	}()
	for _, name := range names {
		if seen[name] {
			continue
		}
		if _, _, _, ok := parseRunName(name); !ok {
			continue
		}
		data, err := d.Store.Get(ctx, resultsDir+"/"+name)
		if err != nil {
			return fmt.Errorf("read results %s: %w", name, err)
		}
		lines, err := decodeLines[resultLine](data)
		if err != nil {
			return fmt.Errorf("read results %s: %w", name, err)
		}
		seen[name] = true
		if c, _, part, _ := parseRunName(name); part == 0 {
			d.finals.Add(c)
		}
		for i := range lines {
			l := &lines[i]
			if done.Has(l.Index) || keep != nil && !keep(l.Index) {
				continue // a run of a worker thought lost finished after all, or not asked for
			}
			kind := rt.TaskFinished
			if l.Retry {
				kind = rt.TaskRetrying
			} else {
				done.Add(l.Index)
			}
			r.Report(rt.Event{Kind: kind, Result: l.result()})
		}
	}
	return nil
}

// seal ends the staging of a run the driver detaches from, so that its workers finish the
// tasks staged so far and end: it waits for the staging to stop (stageErr is nil once it
// ended well, having written END), then writes END after the chunks it staged. A later
// Collect finds the tasks never staged missing, to be run afresh.
func (d *Driver) seal(stageErr <-chan error) {
	if stageErr == nil || <-stageErr == nil {
		return
	}
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	_ = d.Store.Put(ctx, endName, []byte(strconv.Itoa(int(d.chunks.Load()))))
}

// cancel tells the workers to stop; it outlives the run's context.
func (d *Driver) cancel() {
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	_ = d.Store.Put(ctx, cancelName, []byte("canceled"))
}

// MarkLost records that worker id died, so its unfinished chunks are run again.
func MarkLost(ctx context.Context, s Store, id string) error {
	err := s.Create(ctx, lostDir+"/"+id, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	if errors.Is(err, ErrExist) {
		return nil
	}
	return err
}
