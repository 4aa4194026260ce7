// Package slurm runs a job's tasks as a Slurm job array: each array task is a `mapflow worker`
// (the same binary) that claims chunks of tasks from the job's staging in a directory the
// compute nodes share (work_dir), so a job of any size is one array of array_size workers. It
// is the remote skeleton (runtime/remote) on Slurm: a run is one array, plus the arrays that
// replace its workers once all are gone with work left.
package slurm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/remote"
)

var (
	_ rt.Backend    = (*Backend)(nil)
	_ rt.Reattacher = (*Backend)(nil)
	_ rt.Stopper    = (*Backend)(nil)
	_ rt.Explainer  = (*Backend)(nil)
)

// Backend is the Slurm backend.
type Backend struct {
	cfg *Config // prepared (see Config.Prepare)
	// Log receives a line for each step a user may want to see; nil discards them.
	Log io.Writer
	// WatchEvery is how often the array is looked at with squeue; 0 is one second.
	WatchEvery time.Duration

	mu   sync.Mutex
	last *array // the array of the last run, for tests
}

// New returns a Slurm backend with the settings of cfg, which Prepare completed.
func New(cfg *Config) *Backend { return &Backend{cfg: cfg} }

// Logf reports a step, prefixed with "slurm: ".
func (b *Backend) Logf(format string, args ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, "slurm: "+format+"\n", args...)
	}
}

// Run stages the job under work_dir, submits the array and reports the results the workers
// write back; canceling ctx cancels the array.
func (b *Backend) Run(ctx context.Context, job *lang.Job, tasks <-chan rt.Task, r rt.Reporter) error {
	return remote.Run(ctx, b, job, b.cfg.Env, tasks, r)
}

// Reattach picks up the array of a job whose driver died (see remote.Reattach).
func (b *Backend) Reattach(ctx context.Context, job *lang.Job, state []byte, tasks <-chan rt.Task, r rt.Reporter) error {
	return remote.Reattach(ctx, b, job, b.cfg.Env, state, tasks, r)
}

// Stop cancels the array of a run whose driver is gone.
func (b *Backend) Stop(ctx context.Context, state []byte) error { return remote.Stop(ctx, b, state) }

// workerIdle is how long an array task waits for work before it ends: a driver that died
// would otherwise leave its array holding the nodes until its time limit.
const workerIdle = 10 * time.Minute

// runState is what a new driver needs to find a run again.
type runState struct {
	Arrays []string `json:"arrays"` // the array's job id, then those of its replacements
	Dir    string   `json:"dir"`    // the run's staging directory
	Size   int      `json:"size"`   // array tasks per array
}

// array is a run: a job array and its replacements, staged in dir.
type array struct {
	b        *Backend
	cfg      *Config
	job      *lang.Job
	dir      string
	store    remote.DirStore
	size     int
	attached bool

	mu       sync.Mutex
	ids      []string          // job ids of the arrays submitted, first the run's own
	ended    map[string]string // array task (ID_N) -> how it ended
	lastLook time.Time
	bin      string // the staged binary
	replaced int    // array tasks submitted to replace lost ones
	pending  string // the pending reason said last
}

// Launch makes the run's staging directory under work_dir (the job's own directory readable
// by its owner only) and reads the cluster's array limits.
func (b *Backend) Launch(ctx context.Context, job *lang.Job, jobID, run string) (remote.Launch, error) {
	cfg := b.cfg
	if err := os.MkdirAll(filepath.Join(cfg.WorkDir, jobID), 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.At("work_dir"), err)
	}
	if err := os.Chmod(filepath.Join(cfg.WorkDir, jobID), 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.At("work_dir"), err)
	}
	dir := filepath.Join(cfg.WorkDir, filepath.FromSlash(run))
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.At("work_dir"), err)
	}
	size := cfg.size()
	if max, err := maxArraySize(ctx); err == nil && size > max {
		b.Logf("array_size %d is more than the cluster's MaxArraySize allows; the array has %d tasks", size, max)
		size = max
	}
	a := &array{b: b, cfg: cfg, job: job, dir: dir, store: remote.DirStore(dir), size: size, ended: map[string]string{}}
	b.mu.Lock()
	b.last = a
	b.mu.Unlock()
	return a, nil
}

// maxArraySize is the most array tasks one array may have here: MaxArraySize - 1 (indices
// start at 0), and no more than MaxJobCount.
func maxArraySize(ctx context.Context) (int, error) {
	out, err := command(ctx, "scontrol", "show", "config")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		x, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		switch strings.TrimSpace(k) {
		case "MaxArraySize":
			if x-1 < n || n == 0 {
				n = x - 1
			}
		case "MaxJobCount":
			if x < n || n == 0 {
				n = x
			}
		}
	}
	if n <= 0 {
		return 0, fmt.Errorf("scontrol show config: no MaxArraySize")
	}
	return n, nil
}

// Attach finds the run a saved runState names.
func (b *Backend) Attach(ctx context.Context, job *lang.Job, state []byte) (remote.Launch, error) {
	var st runState
	if err := json.Unmarshal(state, &st); err != nil || len(st.Arrays) == 0 {
		return nil, nil
	}
	a := &array{b: b, cfg: b.cfg, job: job, dir: st.Dir, store: remote.DirStore(st.Dir), size: st.Size,
		ids: st.Arrays, ended: map[string]string{}, attached: true}
	return a, nil
}

func (a *array) Store() remote.Store { return a.store }

func (a *array) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ids) == 0 {
		return "the Slurm array of " + a.dir
	}
	return "Slurm job array " + strings.Join(a.ids, ", ")
}

// Tune runs cpus_per_task tasks in each array task.
func (a *array) Tune(d *remote.Driver) {
	d.Threads, d.Workers = a.cfg.CPUsPerTask, a.size*a.cfg.CPUsPerTask
}

func (a *array) State() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, _ := json.Marshal(runState{Arrays: a.ids, Dir: a.dir, Size: a.size})
	return st
}

// StartWorkers copies the binary into the run's directory, where every node sees it, and
// submits the array.
func (a *array) StartWorkers(ctx context.Context, bin string) (err error) {
	if a.bin, err = a.stageBinary(bin); err != nil {
		return fmt.Errorf("stage the mapflow binary: %w", err)
	}
	script := filepath.Join(a.dir, "worker.sh")
	text := fmt.Sprintf(`#!/bin/sh
# A mapflow worker: one array task of job %s.
id="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
exec '%s' worker --store 'file://%s' --id "$id" --host "${SLURMD_NODENAME:-$(hostname)}/$id" --threads %d --idle %s
`, a.job.Name, a.bin, a.dir, a.cfg.CPUsPerTask, workerIdle)
	if err := os.WriteFile(script, []byte(text), 0o700); err != nil {
		return fmt.Errorf("stage the worker script: %w", err)
	}
	id, err := a.submit(ctx, a.size)
	if err != nil {
		return err
	}
	a.b.Logf("job staged in %s; job array %s of %d tasks", a.dir, id, a.size)
	return rt.SaveState(ctx, a.State())
}

// stageBinary copies the binary once per content under work_dir/.mapflow/bin/SHA256/, where
// every node sees it and every later run with the same binary finds it.
func (a *array) stageBinary(bin string) (string, error) {
	sum, err := rt.FileSHA256(bin)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(a.cfg.WorkDir, ".mapflow", "bin", sum[:16])
	staged := filepath.Join(dir, "mapflow")
	if info, err := os.Stat(staged); err == nil && info.Mode().IsRegular() {
		return staged, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp := staged + ".tmp-" + strconv.Itoa(os.Getpid())
	os.Remove(tmp) // one a crashed run of this pid left
	if err := rt.CopyFile(bin, tmp, 0o700); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return staged, os.Rename(tmp, staged)
}

// submit submits an array of n workers and returns its job id.
func (a *array) submit(ctx context.Context, n int) (string, error) {
	cfg := a.cfg
	spec := fmt.Sprintf("0-%d", n-1)
	if cfg.Parallelism > 0 {
		spec += "%" + strconv.Itoa(cfg.Parallelism)
	}
	args := []string{"--parsable", "--array=" + spec, "--job-name=mapflow-" + a.job.Name, "--chdir=" + a.dir,
		"--output=" + filepath.Join(a.dir, "logs", "%A_%a.out"), "--cpus-per-task=" + strconv.Itoa(cfg.CPUsPerTask)}
	if cfg.Partition != "" {
		args = append(args, "--partition="+cfg.Partition)
	}
	if cfg.Time != "" {
		args = append(args, "--time="+cfg.Time)
	}
	if cfg.Mem != "" {
		args = append(args, "--mem="+cfg.Mem)
	}
	args = append(args, cfg.SbatchArgs...)
	args = append(args, filepath.Join(a.dir, "worker.sh"))
	// sbatch is not interrupted by a cancel of the run: killed halfway, it may have submitted
	// the array without telling its id, and nothing could then cancel it. Once it returns,
	// the run's end cancels what it submitted.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	out, err := command(sctx, "sbatch", args...)
	if err != nil {
		return "", fmt.Errorf("%s: submit the job array: %w", cfg.At("sbatch_args", "partition"), err)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";") // ID or ID;CLUSTER
	if _, err := strconv.Atoi(id); err != nil {
		return "", fmt.Errorf("sbatch printed %q, not a job id", strings.TrimSpace(out))
	}
	a.mu.Lock()
	a.ids = append(a.ids, id)
	a.mu.Unlock()
	return id, nil
}

// element is an array task as squeue or scontrol shows it.
type element struct {
	id, state, reason, node, exit string
}

// live lists the array tasks of the run's arrays that have not ended, by ID_N.
func (a *array) live(ctx context.Context) (map[string]element, error) {
	a.mu.Lock()
	ids := strings.Join(a.ids, ",")
	a.mu.Unlock()
	out, err := command(ctx, "squeue", "-h", "-r", "-j", ids, "-o", "%i|%T|%r|%N")
	if err != nil {
		if strings.Contains(err.Error(), "Invalid job id") {
			return map[string]element{}, nil // every one has ended, and Slurm forgot them
		}
		return nil, err
	}
	live := map[string]element{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) == 4 {
			live[f[0]] = element{id: f[0], state: f[1], reason: f[2], node: f[3]}
		}
	}
	return live, nil
}

// show is how scontrol saw an array task end; ok is false once Slurm forgot it (MinJobAge).
func show(ctx context.Context, id string) (element, bool) {
	out, err := command(ctx, "scontrol", "show", "job", "-o", id)
	if err != nil {
		return element{}, false
	}
	e := parseJob(out)
	e.id = id
	return e, e.state != ""
}

// parseJob reads one line of `scontrol show job -o`: its array task (ID_N), state, reason,
// exit code and node.
func parseJob(line string) element {
	var e element
	var arr, task string
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "ArrayJobId":
			arr = v
		case "ArrayTaskId":
			task = v
		case "JobState":
			e.state = v
		case "Reason":
			e.reason = v
		case "NodeList":
			e.node = v
		case "ExitCode":
			e.exit = v
		}
	}
	e.id = arr + "_" + task
	return e
}

// Watch looks at the array every second: an array task that ended other than COMPLETED is
// marked lost, so that its unfinished chunk runs again (its tasks count an attempt); when
// every array task has ended with work left, a new array replaces them, up to twice the
// array's size plus two, as YARN's ApplicationMaster does. An attached run is only watched
// until every array task has ended.
func (a *array) Watch(ctx context.Context) error {
	every := a.b.WatchEvery
	if every <= 0 {
		every = time.Second
	}
	if time.Since(a.lastLook) < every {
		return nil
	}
	a.lastLook = time.Now()
	live, err := a.live(ctx)
	if err != nil {
		return nil // slurmctld may be briefly unreachable; the array goes on
	}
	a.mu.Lock()
	ids := slicesClone(a.ids)
	a.mu.Unlock()
	for _, arr := range ids {
		for i := range a.size {
			id := arr + "_" + strconv.Itoa(i)
			if _, ok := live[id]; ok || a.ended[id] != "" {
				continue
			}
			if pendingRange(live, arr, i) {
				continue // squeue shows the array's pending tasks as one line: 12_[3-7%2]
			}
			e, known := show(ctx, id)
			how := "ended (Slurm no longer knows how)"
			if known {
				how = e.state
				if e.reason != "" && e.reason != "None" {
					how += " (" + e.reason + ")"
				}
				if e.exit != "" && e.exit != "0:0" {
					how += ", exit code " + e.exit
				}
			}
			a.ended[id] = how
			if known && e.state == "COMPLETED" && (e.exit == "" || e.exit == "0:0") {
				continue
			}
			if err := remote.MarkLost(ctx, a.store, id); err != nil {
				return fmt.Errorf("mark array task %s lost: %w", id, err)
			}
			switch {
			case known && e.state == "TIMEOUT":
				a.b.Logf("array task %s on %s reached its time limit (TIMEOUT, time = %q); its unfinished tasks run again", id, e.node, a.cfg.Time)
			case known && e.state != "COMPLETED":
				a.b.Logf("array task %s on %s ended %s; its unfinished tasks run again", id, e.node, how)
			}
		}
	}
	if len(live) > 0 {
		a.sayPending(live)
		return nil
	}
	if a.attached {
		return fmt.Errorf("every array task of %s has ended", a)
	}
	// Every worker is gone, yet the driver still waits for results: replace them.
	if a.replaced >= 2*a.size+2 {
		return fmt.Errorf("the array tasks of %s ended before every task finished, and %d replacements too: %s", a, a.replaced, a.endings())
	}
	n := min(a.size, 2*a.size+2-a.replaced)
	id, err := a.submit(ctx, n)
	if err != nil {
		return err
	}
	a.replaced += n
	_ = rt.SaveState(ctx, a.State())
	a.b.Logf("every array task ended with work left (%s); job array %s of %d tasks replaces them", a.endings(), id, n)
	return nil
}

// sayPending says once why the array waits, when none of its tasks runs and Slurm's reason
// is not a plain wait for resources (PartitionConfig: it asks for more than the partition has,
// and never starts; JobHeldUser, BeginTime: sbatch_args asked for it).
func (a *array) sayPending(live map[string]element) {
	reason := ""
	for _, e := range live {
		if e.state != "PENDING" {
			return
		}
		reason = e.reason
	}
	switch reason {
	case "", "None", "Priority", "Resources", "JobArrayTaskLimit", a.pending:
		return
	}
	a.pending = reason
	a.b.Logf("%s is pending: Slurm's reason is %s (squeue shows it; Ctrl-C or mapflow cancel ends the job)", a, reason)
}

// pendingRange tells whether squeue lists array task i of arr inside a pending range line
// such as 12_[3-7%2] or 12_[3,5].
func pendingRange(live map[string]element, arr string, i int) bool {
	for id := range live {
		rest, ok := strings.CutPrefix(id, arr+"_[")
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(strings.TrimSuffix(rest, "]"), "%")
		for _, part := range strings.Split(rest, ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			l, err1 := strconv.Atoi(lo)
			h := l
			var err2 error
			if isRange {
				h, err2 = strconv.Atoi(hi)
			}
			if err1 == nil && err2 == nil && i >= l && i <= h {
				return true
			}
		}
	}
	return false
}

// endings counts how the array tasks ended: "3 COMPLETED, 1 TIMEOUT".
func (a *array) endings() string {
	count := map[string]int{}
	var order []string
	for _, how := range a.ended {
		state, _, _ := strings.Cut(how, " ")
		if count[state] == 0 {
			order = append(order, state)
		}
		count[state]++
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%d %s", count[s], s)
	}
	return strings.Join(parts, ", ")
}

// Finish waits for the array tasks to end: every task has its results, so those still
// pending start only to find nothing to do, and end COMPLETED. Those still pending after a
// minute (a busy cluster) are canceled.
func (a *array) Finish(ctx context.Context) error {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	a.mu.Lock()
	ids := slicesClone(a.ids)
	a.mu.Unlock()
	for {
		live, err := a.live(ectx)
		if err == nil && len(live) == 0 {
			a.b.Logf("job array %s ended", strings.Join(ids, ", "))
			return nil
		}
		select {
		case <-ectx.Done():
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer scancel()
			_, _ = command(sctx, "scancel", append([]string{"--state=PENDING"}, ids...)...)
			a.b.Logf("every task finished; canceled the array tasks of %s still pending after a minute", a)
			return nil
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// Stop cancels the array and its replacements.
func (a *array) Stop(ctx context.Context, _ bool) error {
	a.mu.Lock()
	ids := slicesClone(a.ids)
	a.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	if _, err := command(ctx, "scancel", ids...); err != nil {
		return err
	}
	a.b.Logf("canceled job array %s", strings.Join(ids, ", "))
	return nil
}

// Explain is Slurm's view of a run's array tasks, from squeue and scontrol: each one's state,
// reason, exit code and node, and where its log is.
func (b *Backend) Explain(ctx context.Context, state []byte) (string, error) {
	var st runState
	if err := json.Unmarshal(state, &st); err != nil || len(st.Arrays) == 0 {
		return "", nil
	}
	var out strings.Builder
	fmt.Fprintf(&out, "Slurm's view of job array %s (logs in %s):\n", strings.Join(st.Arrays, ", "), filepath.Join(st.Dir, "logs"))
	for _, arr := range st.Arrays {
		text, err := command(ctx, "scontrol", "show", "job", "-o", arr)
		if err != nil {
			fmt.Fprintf(&out, "  %s: Slurm no longer knows it (it forgets an ended job after MinJobAge): %v\n", arr, err)
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			e := parseJob(line)
			fmt.Fprintf(&out, "  %s: %s, reason %s, exit code %s, node %s\n", e.id, e.state, e.reason, e.exit, e.node)
		}
	}
	return out.String(), nil
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// LastArray is the job id of the last run's array, for tests ("" before any).
func (b *Backend) LastArray() string {
	b.mu.Lock()
	a := b.last
	b.mu.Unlock()
	if a == nil {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ids) == 0 {
		return ""
	}
	return a.ids[0]
}
