// Command simrun measures a remote job far larger than this machine could run: the real
// driver (runtime.Run, the remote staging protocol) and the real catalog, with the workers
// replaced by remote.SimWorker, which claims chunks and writes a result for each task without
// running it. It plays a cluster of -hosts hosts (the driver cuts chunks for that many) with a
// few worker goroutines, and counts every store request.
//
//	simrun -n 10000000 -hosts 1000 -catalog /tmp/sim.db -store /tmp/sim-store
//	simrun -n 100000 -hosts 1000 -catalog /tmp/s3.db -s3 mapflow-bench   # S3 on moto, a sample
//
// It prints one line of figures: tasks, wall_s, ingest_per_s (tasks recorded per second),
// catalog_bytes_per_m (the catalog file and its WAL per million rows), put/get/list_per_m
// (store requests per million tasks), objects_per_m, store_bytes_per_task, rss_mb (the
// process's peak) and chunks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mapflow/mapflow/backends/ec2"
	_ "github.com/mapflow/mapflow/backends/local" // the job file's env kind
	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/backendtest"
	"github.com/mapflow/mapflow/runtime/remote"
)

func main() { os.Exit(run()) }

func run() int {
	n := flag.Int("n", 10_000_000, "tasks")
	hosts := flag.Int("hosts", 1000, "hosts the driver cuts chunks for")
	workers := flag.Int("workers", 4, "worker goroutines playing them")
	catPath := flag.String("catalog", "", "the catalog file (created afresh)")
	storeDir := flag.String("store", "", "a directory for a directory store")
	bucket := flag.String("s3", "", "an S3 bucket (on $AWS_ENDPOINT_URL, moto) instead of -store")
	flag.Parse()
	if *catPath == "" || (*storeDir == "") == (*bucket == "") {
		fmt.Fprintln(os.Stderr, "usage: simrun -catalog FILE (-store DIR | -s3 BUCKET) [-n N] [-hosts H] [-workers W]")
		return 2
	}
	ctx := context.Background()
	var base remote.Store
	if *bucket != "" {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "simrun:", err)
			return 1
		}
		client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
		if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(*bucket)}); err != nil &&
			!strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") && !strings.Contains(err.Error(), "BucketAlreadyExists") {
			fmt.Fprintln(os.Stderr, "simrun:", err)
			return 1
		}
		base = ec2.NewStore(client, *bucket, "sim/"+strconv.FormatInt(time.Now().UnixNano(), 36))
	} else {
		// Emptied first, but only when it is new, empty or an earlier run's store: -store names
		// a directory to delete, and a mistyped one must not lose anything.
		entries, err := os.ReadDir(*storeDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintln(os.Stderr, "simrun:", err)
			return 2
		}
		if _, serr := os.Stat(filepath.Join(*storeDir, "job.json")); len(entries) > 0 && serr != nil {
			fmt.Fprintf(os.Stderr, "simrun: -store %s is not empty and holds no earlier simulated store (job.json): give a new or empty directory\n", *storeDir)
			return 2
		}
		if err := os.RemoveAll(*storeDir); err != nil {
			fmt.Fprintln(os.Stderr, "simrun:", err)
			return 1
		}
		base = remote.DirStore(*storeDir)
	}
	store := &countingStore{Store: base}

	dir, err := os.MkdirTemp("", "simrun-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "simrun:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sim.mf")
	src := fmt.Sprintf("job sim\nenv local {}\nfunc add(x, y) = x + y\nparams map(1..%d, ({x: #, y: #}))\n", *n)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "simrun:", err)
		return 1
	}
	job, err := lang.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "simrun:", err)
		return 1
	}
	env, _ := job.DefaultEnv("")
	// The catalog is made afresh, replacing only an SQLite file.
	if head, err := readHead(*catPath, 16); err == nil && string(head) != "SQLite format 3\x00" {
		fmt.Fprintf(os.Stderr, "simrun: -catalog %s exists and is not an SQLite file: give a new path\n", *catPath)
		return 2
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(*catPath + suffix)
	}
	cat, err := catalog.Open(*catPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "simrun:", err)
		return 1
	}
	defer cat.Close()

	cl := &cluster{store: store, hosts: *hosts, workers: *workers}
	start := time.Now()
	rep, err := rt.Run(ctx, cat, backend{cl}, job, env, rt.Options{})
	wall := time.Since(start)
	if err != nil {
		fmt.Fprintln(os.Stderr, "simrun:", err)
		return 1
	}
	if rep.Status != rt.Completed || rep.NumDone != *n {
		fmt.Fprintf(os.Stderr, "simrun: %s, %d of %d tasks done\n", rep.Status, rep.NumDone, *n)
		return 1
	}
	var catBytes int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(*catPath + suffix); err == nil {
			catBytes += fi.Size()
		}
	}
	m := float64(*n) / 1e6
	fmt.Printf("tasks=%d wall_s=%.3f ingest_per_s=%.0f catalog_bytes_per_m=%.0f put_per_m=%.0f get_per_m=%.0f list_per_m=%.0f objects_per_m=%.0f store_bytes_per_task=%.1f rss_mb=%d chunks=%d\n",
		*n, wall.Seconds(), float64(*n)/wall.Seconds(), float64(catBytes)/m,
		float64(store.puts.Load())/m, float64(store.gets.Load())/m, float64(store.lists.Load())/m,
		float64(store.objects.Load())/m, float64(store.bytes.Load())/float64(*n), backendtest.PeakRSS()>>20, cl.chunks.Load())
	return 0
}

// countingStore counts the requests made of a Store: Put and Create are PUTs.
type countingStore struct {
	remote.Store
	puts, gets, lists, objects, bytes atomic.Int64
}

func (s *countingStore) Put(ctx context.Context, name string, data []byte) error {
	s.puts.Add(1)
	s.objects.Add(1)
	s.bytes.Add(int64(len(data)))
	return s.Store.Put(ctx, name, data)
}

func (s *countingStore) Create(ctx context.Context, name string, data []byte) error {
	s.puts.Add(1)
	err := s.Store.Create(ctx, name, data)
	if err == nil {
		s.objects.Add(1)
		s.bytes.Add(int64(len(data)))
	}
	return err
}

func (s *countingStore) Get(ctx context.Context, name string) ([]byte, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, name)
}

func (s *countingStore) List(ctx context.Context, dir, after string) ([]string, error) {
	s.lists.Add(1)
	return s.Store.List(ctx, dir, after)
}

// backend runs a job on the simulated cluster through the remote skeleton.
type backend struct{ c *cluster }

func (b backend) Run(ctx context.Context, job *lang.Job, tasks <-chan rt.Task, r rt.Reporter) error {
	return remote.Run(ctx, b.c, job, "sim", tasks, r)
}

// cluster is a remote.Cluster whose workers are SimWorkers in goroutines.
type cluster struct {
	store          *countingStore
	hosts, workers int
	chunks         atomic.Int64
}

func (c *cluster) Logf(format string, args ...any) {}

func (c *cluster) Launch(ctx context.Context, job *lang.Job, jobID, run string) (remote.Launch, error) {
	return &launch{c: c}, nil
}

func (c *cluster) Attach(ctx context.Context, job *lang.Job, state []byte) (remote.Launch, error) {
	return nil, nil
}

type launch struct {
	c    *cluster
	wg   sync.WaitGroup
	errs chan error
	sims []*remote.SimWorker
}

func (l *launch) Store() remote.Store { return l.c.store }

// Tune cuts the chunks for the hosts played, one task at a time each; the driver and the
// workers poll as often as real ones do.
func (l *launch) Tune(d *remote.Driver) {
	d.Threads, d.Workers = 1, l.c.hosts
}

func (l *launch) State() []byte { return nil }

func (l *launch) StartWorkers(ctx context.Context, bin string) error {
	l.errs = make(chan error, l.c.workers)
	for i := range l.c.workers {
		w := &remote.SimWorker{Store: l.c.store, ID: strconv.Itoa(i)}
		l.sims = append(l.sims, w)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := w.Run(ctx); err != nil {
				l.errs <- err
			}
		}()
	}
	return nil
}

func (l *launch) Watch(ctx context.Context) error {
	select {
	case err := <-l.errs:
		return err
	default:
		return nil
	}
}

func (l *launch) Finish(ctx context.Context) error {
	l.wg.Wait()
	if n, _, err := remote.StagedChunks(ctx, l.c.store.Store); err == nil {
		l.c.chunks.Store(int64(n))
	}
	return nil
}

func (l *launch) Stop(ctx context.Context, force bool) error { return nil }

func (l *launch) String() string { return "simulated workers" }

// readHead reads the first n bytes of a file (fewer when it is shorter).
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return b[:k], err
}
