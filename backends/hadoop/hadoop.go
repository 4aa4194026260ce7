package hadoop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/mapflow/mapflow/backends/hadoop/yarn"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/remote"
)

var _ rt.Backend = (*Backend)(nil)

// EnvWorkerBinary names the mapflow binary to run in the containers, when it is not the one
// running (a binary built for the cluster's platform, or a test's build).
const EnvWorkerBinary = "MAPFLOW_WORKER_BINARY"

// Backend is the Hadoop backend.
type Backend struct {
	cfg *Config // prepared (see Config.Prepare)
	// Log, when set, receives what the backend does (the application id, its end).
	Log func(format string, args ...any)

	app yarn.ApplicationID // the running application, for tests
}

// New returns a Hadoop backend with the settings of cfg, which Prepare completed.
func New(cfg *Config) *Backend { return &Backend{cfg: cfg} }

func (b *Backend) logf(format string, args ...any) {
	if b.Log != nil {
		b.Log(format, args...)
	}
}

// Run stages the job in HDFS, submits a YARN application that runs the workers, and reports
// results as they land in HDFS. Canceling ctx kills the application.
func (b *Backend) Run(ctx context.Context, job *lang.Job, tasks <-chan rt.Task, r rt.Reporter) error {
	cfg := b.cfg
	id := rt.JobID(ctx)
	if id == "" {
		id = rt.NewJobID(job.Name, time.Now())
	}
	// A run of its own under the job's directory: a resumed job stages afresh.
	dir := path.Join(cfg.DistDir(), id, "run-"+time.Now().UTC().Format("20060102-150405.000"))
	// The ResourceManager and the NameNode are asked first: a wrong address fails before
	// anything is written.
	rm, err := yarn.NewRMClient("http://"+cfg.WebApp, cfg.User)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.At("resourcemanager_webapp", "hadoop_conf_dir"), err)
	}
	app, err := rm.NewApplication(ctx)
	if err != nil {
		return fmt.Errorf("%s: cannot get an application from the ResourceManager at %s (from resourcemanager_webapp or hadoop_conf_dir's yarn.resourcemanager.webapp.address): is YARN up? %w",
			cfg.At("resourcemanager_webapp", "hadoop_conf_dir"), cfg.WebApp, err)
	}
	b.app = app.ID
	store, err := OpenStore(cfg.NameNode, cfg.User, dir)
	if err != nil {
		return fmt.Errorf("%s: cannot reach the HDFS NameNode at %s (from dist_path, namenode or hadoop_conf_dir's fs.defaultFS): is the cluster up? %w",
			cfg.At("namenode", "dist_path", "hadoop_conf_dir"), cfg.NameNode, err)
	}
	defer store.Close()
	if err := store.MakeRoot(); err != nil {
		return fmt.Errorf("stage the job: %w", err)
	}
	d := &remote.Driver{Store: store, JobID: id, Threads: cfg.VCores, Workers: cfg.Containers * cfg.VCores}
	if err := d.Stage(ctx, job, cfg.Env); err != nil {
		return fmt.Errorf("stage the job in %s: %w", dir, err)
	}
	bin := os.Getenv(EnvWorkerBinary)
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find the mapflow binary to stage: %w", err)
		}
	}
	binURL, size, mtime, err := store.Upload(cfg.NameNode, bin, "mapflow")
	if err != nil {
		return fmt.Errorf("stage the mapflow binary: %w", err)
	}

	storeURL := "hdfs://" + cfg.NameNode + dir
	am := []string{"./mapflow", "yarn-am", "--store", storeURL,
		"--containers", fmt.Sprint(cfg.Containers), "--memory", fmt.Sprint(cfg.MemoryMB),
		"--vcores", fmt.Sprint(cfg.VCores), "--binary", binURL, "--binary-size", fmt.Sprint(size),
		"--binary-mtime", fmt.Sprint(mtime), "--user", cfg.User,
		"1><LOG_DIR>/stdout", "2><LOG_DIR>/stderr"}
	err = rm.Submit(ctx, yarn.Submission{
		ID: app.ID, Name: "mapflow " + job.Name + " " + id, Type: "MAPFLOW", Queue: cfg.Queue, MaxAttempts: 1,
		Resource: yarn.Resource{MemoryMB: int64(cfg.MemoryMB), VCores: 1},
		AM: yarn.LaunchContext{
			LocalResources: map[string]yarn.LocalResource{"mapflow": {URL: binURL, Size: size, Timestamp: mtime,
				Type: yarn.File, Visibility: yarn.VisibilityApplication}},
			Environment: map[string]string{"HADOOP_USER_NAME": cfg.User},
			Commands:    am,
		},
		Tags: []string{"mapflow", id},
	})
	if err != nil {
		return fmt.Errorf("submit the application: %w", err)
	}
	b.logf("hadoop: job staged in %s; YARN application %s", storeURL, app.ID)
	st, _ := json.Marshal(runState{App: app.ID.String(), NameNode: cfg.NameNode, Dir: dir, WebApp: cfg.WebApp})
	saved := rt.SaveState(ctx, st) == nil
	if !saved {
		b.logf("hadoop: could not save the run's state (a new driver will not be able to re-attach)")
	}

	d.Watch = watchApp(rm, app.ID)
	runErr := d.Run(ctx, job, tasks, r)

	// The application ends on its own when every task has results; a failure or a cancel
	// ends it here.
	endCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if runErr != nil {
		if saved && rt.Detached(ctx) {
			b.logf("hadoop: leaving YARN application %s running; mapflow resume fetches its results", app.ID)
			return runErr
		}
		if err := rm.Kill(endCtx, app.ID); err != nil {
			b.logf("hadoop: kill %s: %v", app.ID, err)
		}
		if errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) {
			return runErr
		}
		return fmt.Errorf("%w", runErr)
	}
	rep, err := rm.Wait(endCtx, app.ID, 250*time.Millisecond)
	if err != nil {
		return fmt.Errorf("every task finished, but YARN application %s did not end: %w", app.ID, err)
	}
	b.logf("hadoop: YARN application %s ended %s/%s", app.ID, rep.State, rep.FinalStatus)
	if rep.FinalStatus != "SUCCEEDED" {
		return fmt.Errorf("every task finished, but YARN application %s ended %s/%s: %s",
			app.ID, rep.State, rep.FinalStatus, rep.Diagnostics)
	}
	return nil
}

// watchApp is a remote.Driver's Watch: an error once the application ended, asked of the
// ResourceManager at most once a second.
func watchApp(rm *yarn.RMClient, app yarn.ApplicationID) func(context.Context) error {
	var last time.Time
	return func(ctx context.Context) error {
		if time.Since(last) < time.Second {
			return nil
		}
		last = time.Now()
		rep, err := rm.App(ctx, app)
		if err != nil || !rep.Terminal() {
			return nil // the ResourceManager may be briefly unreachable; the app goes on
		}
		return fmt.Errorf("YARN application %s ended %s/%s before every task finished: %s",
			app, rep.State, rep.FinalStatus, strings.TrimSpace(rep.Diagnostics))
	}
}

// runState is what a new driver needs to re-attach to a run: its application and staging.
type runState struct {
	App      string `json:"app"`
	NameNode string `json:"namenode"`
	Dir      string `json:"dir"`
	WebApp   string `json:"webapp"`
}

var _ rt.Reattacher = (*Backend)(nil)

// Reattach picks up the run of a job whose driver died: the YARN application goes on without
// it (or has ended), and its results are in HDFS. It reports those of the tasks received,
// waiting for the ones still running, and runs afresh, in a new application, the tasks the
// old one ended without.
func (b *Backend) Reattach(ctx context.Context, job *lang.Job, state []byte, tasks <-chan rt.Task, r rt.Reporter) error {
	var st runState
	if err := json.Unmarshal(state, &st); err != nil || st.App == "" {
		return b.Run(ctx, job, tasks, r)
	}
	cfg := b.cfg
	app, err := yarn.ParseApplicationID(st.App)
	if err != nil {
		return fmt.Errorf("re-attach: %w", err)
	}
	store, err := OpenStore(st.NameNode, cfg.User, st.Dir)
	if err != nil {
		return fmt.Errorf("re-attach: cannot reach the HDFS NameNode at %s: %w", st.NameNode, err)
	}
	defer store.Close()
	rm, err := yarn.NewRMClient("http://"+st.WebApp, cfg.User)
	if err != nil {
		return err
	}
	b.app = app
	b.logf("hadoop: re-attaching to YARN application %s (staged in %s)", app, st.Dir)
	d := &remote.Driver{Store: store, Watch: watchApp(rm, app)}
	missing, err := d.Collect(ctx, tasks, r)
	if ctx.Err() != nil {
		if rt.Detached(ctx) {
			b.logf("hadoop: leaving YARN application %s running; mapflow resume fetches its results", app)
			return ctx.Err()
		}
		kctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rm.Kill(kctx, app)
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("re-attach to %s: %w", app, err)
	}
	if len(missing) == 0 {
		return nil
	}
	b.logf("hadoop: YARN application %s ended without %d tasks; running them again", app, len(missing))
	return b.Run(ctx, job, rt.Feed(missing), r)
}

var _ rt.Stopper = (*Backend)(nil)

// Stop kills the YARN application of a run whose driver is gone, unless it has ended.
func (b *Backend) Stop(ctx context.Context, state []byte) error {
	var st runState
	if err := json.Unmarshal(state, &st); err != nil || st.App == "" {
		return nil
	}
	cfg := b.cfg
	app, err := yarn.ParseApplicationID(st.App)
	if err != nil {
		return err
	}
	rm, err := yarn.NewRMClient("http://"+st.WebApp, cfg.User)
	if err != nil {
		return err
	}
	if rep, err := rm.App(ctx, app); err == nil && rep.Terminal() {
		return nil
	}
	if err := rm.Kill(ctx, app); err != nil {
		return fmt.Errorf("kill YARN application %s: %w", app, err)
	}
	b.logf("hadoop: killed YARN application %s", app)
	return nil
}

// App is the YARN application of the last Run, for tests.
func (b *Backend) App() yarn.ApplicationID { return b.app }
