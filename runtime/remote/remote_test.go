package remote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/backendtest"
)

// dirBackend runs a job through the staging protocol with workers in goroutines sharing a
// DirStore: the driver and worker code of the distributed backends, without a cluster.
type dirBackend struct {
	t       *testing.T
	workers int
	chunk   int // tasks per chunk; 0 is 3

	mu      sync.Mutex
	store   DirStore
	running map[string]context.CancelFunc // live workers by id
}

func (b *dirBackend) Run(ctx context.Context, job *lang.Job, tasks <-chan rt.Task, r rt.Reporter) error {
	b.mu.Lock()
	b.store = DirStore(b.t.TempDir())
	b.running = map[string]context.CancelFunc{}
	b.mu.Unlock()
	d := &Driver{Store: b.store, JobID: "test", ChunkSize: cmp.Or(b.chunk, 3), Workers: b.workers, Threads: 1, Poll: 20e6}
	if err := d.Stage(ctx, job, "local"); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for i := range b.workers {
		id := fmt.Sprintf("w%d", i)
		wctx, cancel := context.WithCancel(ctx)
		b.mu.Lock()
		b.running[id] = cancel
		b.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &Worker{Store: b.store, ID: id, Host: "host-" + id, Dir: b.t.TempDir(), Threads: 1, Poll: 20e6}
			if err := w.Run(wctx); err != nil && wctx.Err() == nil && err != ErrCanceled {
				b.t.Errorf("worker %s: %v", id, err)
			}
		}()
	}
	defer wg.Wait()
	return d.Run(ctx, job, tasks, r)
}

// lose stops a worker that holds a claim, as a killed process would, and marks it lost.
func (b *dirBackend) lose(t *testing.T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, cancel := range b.running {
		cancel()
		delete(b.running, id)
		if err := MarkLost(context.Background(), b.store, id); err != nil {
			t.Error(err)
		}
		return
	}
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, _ *lang.Env) rt.Backend { return &dirBackend{t: t, workers: 3} },
		backendtest.Options{LoseWorker: func(t *testing.T, b rt.Backend) { b.(*dirBackend).lose(t) }})
}

// A job of more chunks than a shard holds runs whole: its chunks, claims and results are
// spread over shard directories of at most shardChunks chunks each, which the workers and the
// driver find as the job goes.
func TestShardedChunks(t *testing.T) {
	n := 2*shardChunks + 100
	job, env, cat := backendtest.Load(t, fmt.Sprintf("job shards\nenv local {}\nfunc f(x) = x * 2\nparams map(1..%d, ({x: #}))\ncombine sum(results)\n", n), nil)
	b := &dirBackend{t: t, workers: 3, chunk: 1}
	rep, err := rt.Run(context.Background(), cat, b, job, env, rt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != rt.Completed || rep.NumDone != n {
		t.Fatalf("%s, %d of %d tasks done", rep.Status, rep.NumDone, n)
	}
	if want := fmt.Sprint(n * (n + 1)); fmt.Sprint(rep.Combined) != want {
		t.Errorf("sum(results) = %v, want %s", rep.Combined, want)
	}
	for _, dir := range []string{tasksDir, claimsDir, resultsDir} {
		var sizes []int
		for sh := 0; sh < 4; sh++ {
			names, err := b.store.List(context.Background(), shardDir(dir, sh*shardChunks), "")
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(names))
		}
		if want := []int{shardChunks, shardChunks, 100, 0}; fmt.Sprint(sizes) != fmt.Sprint(want) {
			t.Errorf("%s/: objects per shard %v, want %v (one per chunk)", dir, sizes, want)
		}
		if top, _ := b.store.List(context.Background(), dir, ""); dir != tasksDir && len(top) != 0 {
			t.Errorf("%s/ holds objects outside the shards: %v", dir, top[:min(len(top), 5)])
		}
	}
}

// A worker killed between creating its claim and writing its id leaves an empty claim: after
// claimGrace another worker runs the chunk.
func TestAbandonedClaim(t *testing.T) {
	defer func(g time.Duration) { claimGrace = g }(claimGrace)
	claimGrace = 200 * time.Millisecond
	ctx := context.Background()
	store := DirStore(t.TempDir())
	lines, _ := encodeLines([]taskLine{{Index: 0, Name: "f-0", Params: []byte(`{"x":1}`)}})
	manifest, _ := encodeLines([]Manifest{{JobID: "t", ScriptPath: "t.mf", Script: "job t\nfunc f(x) = x + 1\nparams [{x: 1}]\n"}})
	for name, data := range map[string][]byte{manifestName: manifest, chunkObject(0): lines, endName: []byte("1"),
		claimObject(0, 1): nil} {
		if err := store.Put(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	w := &Worker{Store: store, ID: "w2", Host: "h", Dir: t.TempDir(), Threads: 1, Poll: 20 * time.Millisecond}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Run(wctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, resultObject(0, 2)); err != nil {
		t.Fatalf("the second run of the chunk did not end: %v", err)
	}
	data, err := store.Get(ctx, resultPartObject(0, 2, 1)) // a re-run writes as it goes
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := decodeLines[resultLine](data)
	if len(rs) != 1 || rs[0].Status != rt.Completed || string(rs[0].Value) != "2" || rs[0].Attempt != 2 {
		t.Errorf("results %+v", rs)
	}
}

// A chunk of slow tasks shows results while it runs: its first run writes what it has every
// partEvery, before the run's final object.
func TestPartialResults(t *testing.T) {
	defer func(d time.Duration) { partEvery = d }(partEvery)
	partEvery = 300 * time.Millisecond
	ctx := context.Background()
	store := DirStore(t.TempDir())
	var tl []taskLine
	for i := range 6 {
		tl = append(tl, taskLine{Index: i, Name: fmt.Sprintf("f-%d", i), Params: []byte(fmt.Sprintf(`{"x":%d}`, i))})
	}
	lines, _ := encodeLines(tl)
	script := "job t\nfunc f(x) = exec(\"sh\", \"-c\", \"sleep 0.2; echo $1\", \"sh\", x)\nparams [{x: 1}]\n"
	manifest, _ := encodeLines([]Manifest{{JobID: "t", ScriptPath: "t.mf", Script: script}})
	for name, data := range map[string][]byte{manifestName: manifest, chunkObject(0): lines, endName: []byte("1")} {
		if err := store.Put(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	w := &Worker{Store: store, ID: "w1", Host: "h", Dir: t.TempDir(), Threads: 1, Poll: 20 * time.Millisecond}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()

	// Watch as the driver does: a part must be there while the final object is not yet.
	sawPart := false
	for !sawPart {
		select {
		case err := <-done:
			t.Fatalf("the chunk ended (%v) and no part was seen before its end", err)
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := store.Get(ctx, resultObject(0, 1)); err == nil {
			t.Fatal("the run's final results came before any part")
		}
		data, err := store.Get(ctx, resultPartObject(0, 1, 1))
		if err != nil {
			continue
		}
		rs, _ := decodeLines[resultLine](data)
		if len(rs) == 0 || len(rs) >= len(tl) || rs[0].Index != 0 || string(rs[0].Value) != "0" {
			t.Fatalf("part 1: %+v", rs)
		}
		sawPart = true
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Every task's result is in exactly one object of the run.
	names, _ := listChunks(ctx, store, resultsDir, 0, 1<<20)
	seen := map[int]int{}
	for _, n := range names {
		data, _ := store.Get(ctx, resultsDir+"/"+n)
		rs, _ := decodeLines[resultLine](data)
		for _, r := range rs {
			seen[r.Index]++
		}
	}
	for i := range tl {
		if seen[i] != 1 {
			t.Errorf("task %d has %d results in %v", i, seen[i], names)
		}
	}
}

// A worker whose driver stages nothing more (it died) stops after Idle, instead of holding
// its machine for good.
func TestWorkerIdle(t *testing.T) {
	ctx := context.Background()
	store := DirStore(t.TempDir())
	manifest, _ := encodeLines([]Manifest{{JobID: "t", ScriptPath: "t.mf", Script: "job t\nfunc f(x) = x + 1\nparams [{x: 1}]\n"}})
	if err := store.Put(ctx, manifestName, manifest); err != nil {
		t.Fatal(err)
	}
	w := &Worker{Store: store, ID: "w1", Host: "h", Dir: t.TempDir(), Threads: 1, Poll: 20 * time.Millisecond, Idle: 300 * time.Millisecond}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Run(wctx); !errors.Is(err, ErrIdle) {
		t.Fatalf("Run: %v, want ErrIdle", err)
	}
}

func TestDirStoreListAfter(t *testing.T) {
	ctx := context.Background()
	s := DirStore(t.TempDir())
	for _, name := range []string{"r/00000002.1.jsonl", "r/00000000.1.jsonl", "r/00000001.2", "r/sub/x"} {
		if err := s.Put(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for after, want := range map[string]string{
		"":                 "00000000.1.jsonl,00000001.2,00000002.1.jsonl",
		"00000001":         "00000001.2,00000002.1.jsonl",
		"00000002.1.jsonl": "",
	} {
		names, err := s.List(ctx, "r", after)
		if err != nil || strings.Join(names, ",") != want {
			t.Errorf("List(r, %q) = %v, %v; want %s", after, names, err, want)
		}
	}
}

// eventLog is a Reporter that keeps the events it is given.
type eventLog struct {
	mu     sync.Mutex
	events []rt.Event
}

func (l *eventLog) Report(e rt.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// A canceled run keeps the results its workers wrote before the cancel: the driver looks at
// the store once more before it returns, so those tasks are not recorded Canceled.
func TestCancelKeepsWrittenResults(t *testing.T) {
	job, _, _ := backendtest.Load(t, "job keep\nenv local {}\nfunc f(x) = x * 2\nparams map(1..3, ({x: #}))\n", nil)
	store := DirStore(t.TempDir())
	d := &Driver{Store: store, JobID: "keep", ChunkSize: 1, Workers: 1, Poll: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.Stage(ctx, job, "local"); err != nil {
		t.Fatal(err)
	}
	tasks := make(chan rt.Task, 3)
	for i := range 3 {
		tasks <- rt.Task{Index: i, Name: rt.TaskName("f", i), ParamsJSON: []byte(fmt.Sprintf(`{"x":%d}`, i+1))}
	}
	close(tasks)
	log := &eventLog{}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, job, tasks, log) }()
	w := &SimWorker{Store: store, ID: "w", Poll: 10 * time.Millisecond}
	if err := w.Run(ctx); err != nil { // ends once every chunk up to END has results
		t.Fatal(err)
	}
	cancel() // before the driver's next poll, an hour away
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	finished := map[int]bool{}
	for _, e := range log.events {
		if e.Kind == rt.TaskFinished {
			finished[e.Result.Index] = true
		}
	}
	if len(finished) != 3 {
		t.Errorf("tasks reported finished: %v, want all 3", finished)
	}
}

// A driver that died while staging left no END: re-attaching writes it, and the workers then
// finish the chunks staged and end, instead of waiting for more.
func TestSealStagingEndsTheWorkers(t *testing.T) {
	ctx := context.Background()
	store := DirStore(t.TempDir())
	manifest, _ := encodeLines([]Manifest{{JobID: "t", ScriptPath: "t.mf", Script: "job t\nfunc f(x) = x + 1\nparams map(1..9, ({x: #}))\n"}})
	if err := store.Put(ctx, manifestName, manifest); err != nil {
		t.Fatal(err)
	}
	for c := range 3 { // three chunks of the nine tasks staged, then the driver died
		lines, _ := encodeLines([]taskLine{{Index: c, Name: rt.TaskName("f", c), Params: []byte(`{"x":1}`)}})
		if err := store.Put(ctx, chunkObject(c), lines); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := sealStaging(ctx, store); n != 3 || err != nil {
		t.Fatalf("sealStaging = %d, %v; want 3 chunks", n, err)
	}
	if n, end, err := stagedChunks(ctx, store, 0); n != 3 || !end || err != nil {
		t.Fatalf("after the seal: %d chunks, end %v, %v; want 3, true", n, end, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w := &SimWorker{Store: store, ID: "w", Poll: 10 * time.Millisecond}
	if err := w.Run(wctx); err != nil || wctx.Err() != nil {
		t.Fatalf("worker: %v, %v; want it to end by itself", err, wctx.Err())
	}
	if w.Tasks.Load() != 3 {
		t.Errorf("worker answered %d tasks, want the 3 staged", w.Tasks.Load())
	}
	if _, err := sealStaging(ctx, store); err != nil { // a second re-attach leaves END alone
		t.Fatal(err)
	}
}

// A tasks/END that is not a chunk count (a damaged store) is an error that names it, for the
// workers and for a re-attaching driver alike, not a job of no chunks.
func TestStagedChunksRefusesBadEnd(t *testing.T) {
	ctx := context.Background()
	s := DirStore(t.TempDir())
	for _, end := range []string{"abc", "", "-5", "99999999999999999999999"} {
		if err := s.Put(ctx, endName, []byte(end)); err != nil {
			t.Fatal(err)
		}
		if _, err := (&scanner{store: s}).read(ctx); err == nil || !strings.Contains(err.Error(), "is not a chunk count") {
			t.Errorf("END %q: read = %v, want an error naming it", end, err)
		}
		if _, err := sealStaging(ctx, s); err == nil {
			t.Errorf("END %q: sealStaging took it", end)
		}
	}
}
