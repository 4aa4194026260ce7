package remote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
)

// The skeleton every remote backend shares. A backend implements Cluster (where its workers
// run: a YARN application, EC2 hosts, a Slurm job array); Run, Reattach and Stop do the rest
// alike: stage the job, start the workers, save the run's state, hand over the tasks, and end
// or leave the workers when the run ends.

// WorkerBinaryEnv names the mapflow binary the remote workers run, when it is not the one
// running (a binary built for the cluster's platform, or a test's build).
const WorkerBinaryEnv = "MAPFLOW_WORKER_BINARY"

// WorkerBinary is the mapflow binary to stage for the workers, and where it comes from, for
// messages: $MAPFLOW_WORKER_BINARY, else this mapflow.
func WorkerBinary() (path, from string, err error) {
	if p := os.Getenv(WorkerBinaryEnv); p != "" {
		return p, WorkerBinaryEnv, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", "", fmt.Errorf("find the mapflow binary to stage: %w (set %s)", err, WorkerBinaryEnv)
	}
	return exe, "this mapflow", nil
}

// Cluster is the part of a remote backend that differs from one cluster to another.
type Cluster interface {
	// Logf reports a step a user may want to see.
	Logf(format string, args ...any)
	// Launch checks what it can before anything is written (addresses, credentials, images),
	// then returns a fresh run of the job, whose store is staged under run (JOB_ID/run-TIME).
	Launch(ctx context.Context, job *lang.Job, jobID, run string) (Launch, error)
	// Attach returns the run that a saved State describes, or nil when it describes none.
	Attach(ctx context.Context, job *lang.Job, state []byte) (Launch, error)
}

// Launch is one run of a job's workers on a cluster.
type Launch interface {
	// Store is where the run is staged.
	Store() Store
	// Tune sets how the driver cuts the tasks into chunks for this run's workers.
	Tune(d *Driver)
	// State is what Attach needs to find the run again; it is saved in the catalog before
	// the workers start.
	State() []byte
	// StartWorkers starts the workers, once the job is staged; bin is the mapflow binary.
	StartWorkers(ctx context.Context, bin string) error
	// Watch is the driver's Watch: an error once the workers are gone for good.
	Watch(ctx context.Context) error
	// Finish ends a run whose every task has its result (waits for the application to
	// end, terminates the hosts).
	Finish(ctx context.Context) error
	// Stop ends the workers of a run that failed or was canceled; force ends them whatever
	// the settings say (keep_hosts), for `mapflow cancel`.
	Stop(ctx context.Context, force bool) error
	// String names the run's workers in messages: "YARN application application_1_2".
	String() string
}

// stopTimeout bounds how long ending a run's workers may take once its context is gone.
const stopTimeout = time.Minute

// Run runs the tasks received on tasks on the cluster: a fresh run under the job's id, its
// workers started, its state saved for a later Reattach.
func Run(ctx context.Context, c Cluster, job *lang.Job, envName string, tasks <-chan rt.Task, r rt.Reporter) error {
	id := rt.JobID(ctx)
	if id == "" {
		id = rt.NewJobID(job.Name, time.Now())
	}
	// No worker starts before there is a task: a run whose every task was reused from the
	// cache starts none.
	tasks, ok := waitFirst(ctx, tasks)
	if !ok {
		return ctx.Err()
	}
	// A run of its own under the job's id: a resumed job stages afresh.
	l, err := c.Launch(ctx, job, id, id+"/run-"+time.Now().UTC().Format("20060102-150405.000"))
	if err != nil {
		return err
	}
	d := &Driver{Store: l.Store(), JobID: id, Watch: l.Watch}
	l.Tune(d)
	if err := d.Stage(ctx, job, envName); err != nil {
		return fmt.Errorf("stage the job: %w", err)
	}
	bin, _, err := WorkerBinary()
	if err != nil {
		return err
	}
	saved := rt.SaveState(ctx, l.State()) == nil
	if !saved {
		c.Logf("could not save the run's state (a new driver will not be able to re-attach)")
	}
	err = l.StartWorkers(ctx, bin)
	if err == nil {
		err = d.Run(ctx, job, tasks, r)
	}
	if err != nil {
		return end(ctx, c, l, saved, err)
	}
	return l.Finish(ctx)
}

// waitFirst waits for the first task on tasks and returns a channel that gives it and then the
// rest; ok is false when tasks closed without one or ctx ended first.
func waitFirst(ctx context.Context, tasks <-chan rt.Task) (<-chan rt.Task, bool) {
	var first rt.Task
	select {
	case t, ok := <-tasks:
		if !ok {
			return nil, false
		}
		first = t
	case <-ctx.Done():
		return nil, false
	}
	out := make(chan rt.Task)
	go func() {
		defer close(out)
		for ok := true; ok; first, ok = <-tasks {
			select {
			case out <- first:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, true
}

// end ends a run that failed or was canceled with err, unless the driver detached from it.
func end(ctx context.Context, c Cluster, l Launch, saved bool, err error) error {
	if saved && rt.Detached(ctx) {
		c.Logf("leaving %s running; mapflow resume fetches its results", l)
		return err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if serr := l.Stop(sctx, false); serr != nil {
		c.Logf("stop %s: %v", l, serr)
	}
	return err
}

// Reattach picks up the run of a job whose driver died: its workers went on without it (or
// ended), and their results are in the store. It reports those of the tasks received, waiting
// for the ones still running, and runs afresh, in a new run, the tasks the old one ended
// without. A state that names no run is a fresh Run.
func Reattach(ctx context.Context, c Cluster, job *lang.Job, envName string, state []byte, tasks <-chan rt.Task, r rt.Reporter) error {
	l, err := c.Attach(ctx, job, state)
	if err != nil {
		return fmt.Errorf("re-attach: %w", err)
	}
	if l == nil {
		return Run(ctx, c, job, envName, tasks, r)
	}
	c.Logf("re-attaching to %s", l)
	d := &Driver{Store: l.Store(), Watch: l.Watch}
	l.Tune(d)
	missing, err := d.Collect(ctx, tasks, r)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return end(ctx, c, l, true, fmt.Errorf("re-attach to %s: %w", l, err))
	}
	if err := l.Finish(ctx); err != nil {
		c.Logf("%v", err) // the results are in; the old run's end is the cluster's business
	}
	if len(missing) == 0 {
		return nil
	}
	c.Logf("%s ended without %d tasks; running them again", l, len(missing))
	return Run(ctx, c, job, envName, rt.Feed(missing), r)
}

// Stop ends the workers of the run a saved state describes, whatever the settings say: the
// job of a driver that is gone is being canceled.
func Stop(ctx context.Context, c Cluster, state []byte) error {
	l, err := c.Attach(ctx, nil, state)
	if err != nil || l == nil {
		return err
	}
	if err := l.Stop(ctx, true); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop %s: %w", l, err)
	}
	return nil
}
