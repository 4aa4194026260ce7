package hadoop

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/mapflow/mapflow/backends/hadoop/yarn"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/remote"
)

// EnvWorkerBinary names the mapflow binary to run in the containers (remote.WorkerBinaryEnv).
const EnvWorkerBinary = remote.WorkerBinaryEnv

var (
	_ rt.Backend    = (*Backend)(nil)
	_ rt.Reattacher = (*Backend)(nil)
	_ rt.Stopper    = (*Backend)(nil)
)

// Backend is the Hadoop backend: the remote skeleton (runtime/remote) on a YARN cluster, whose
// runs are YARN applications.
type Backend struct {
	cfg *Config // prepared (see Config.Prepare)
	// Log, when set, receives what the backend does (the application id, its end).
	Log func(format string, args ...any)

	app yarn.ApplicationID // the running application, for tests
}

// New returns a Hadoop backend with the settings of cfg, which Prepare completed.
func New(cfg *Config) *Backend { return &Backend{cfg: cfg} }

// Logf reports a step, prefixed with "hadoop: ".
func (b *Backend) Logf(format string, args ...any) {
	if b.Log != nil {
		b.Log("hadoop: "+format, args...)
	}
}

// Run stages the job in HDFS, submits a YARN application that runs the workers, and reports
// results as they land in HDFS. Canceling ctx kills the application.
func (b *Backend) Run(ctx context.Context, job *lang.Job, tasks <-chan rt.Task, r rt.Reporter) error {
	return remote.Run(ctx, b, job, b.cfg.Env, tasks, r)
}

// Reattach picks up the YARN application of a job whose driver died (see remote.Reattach).
func (b *Backend) Reattach(ctx context.Context, job *lang.Job, state []byte, tasks <-chan rt.Task, r rt.Reporter) error {
	return remote.Reattach(ctx, b, job, b.cfg.Env, state, tasks, r)
}

// Stop kills the YARN application of a run whose driver is gone, unless it has ended.
func (b *Backend) Stop(ctx context.Context, state []byte) error { return remote.Stop(ctx, b, state) }

// App is the YARN application of the last Run, for tests.
func (b *Backend) App() yarn.ApplicationID { return b.app }

// application is a run: one YARN application and its staging in HDFS.
type application struct {
	b     *Backend
	cfg   *Config
	job   *lang.Job
	rm    *yarn.RMClient
	id    yarn.ApplicationID
	store *Store
	dir   string // the run's staging directory in HDFS
	jobID string
}

// Launch asks the ResourceManager for an application and opens the run's directory in HDFS:
// a wrong address fails before anything is written.
func (b *Backend) Launch(ctx context.Context, job *lang.Job, jobID, run string) (remote.Launch, error) {
	cfg := b.cfg
	rm, err := yarn.NewRMClient("http://"+cfg.WebApp, cfg.User)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.At("resourcemanager_webapp", "hadoop_conf_dir"), err)
	}
	app, err := rm.NewApplication(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot get an application from the ResourceManager at %s (from resourcemanager_webapp or hadoop_conf_dir's yarn.resourcemanager.webapp.address): is YARN up? %w",
			cfg.At("resourcemanager_webapp", "hadoop_conf_dir"), cfg.WebApp, err)
	}
	b.app = app.ID
	dir := path.Join(cfg.DistDir(), run)
	store, err := OpenStore(cfg.NameNode, cfg.User, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot reach the HDFS NameNode at %s (from dist_path, namenode or hadoop_conf_dir's fs.defaultFS): is the cluster up? %w",
			cfg.At("namenode", "dist_path", "hadoop_conf_dir"), cfg.NameNode, err)
	}
	if err := store.MakeRoot(); err != nil {
		store.Close()
		return nil, fmt.Errorf("stage the job in %s: %w", dir, err)
	}
	return &application{b: b, cfg: cfg, job: job, rm: rm, id: app.ID, store: store, dir: dir, jobID: jobID}, nil
}

// Attach finds the application a saved runState names.
func (b *Backend) Attach(ctx context.Context, job *lang.Job, state []byte) (remote.Launch, error) {
	var st runState
	if err := json.Unmarshal(state, &st); err != nil || st.App == "" {
		return nil, nil
	}
	id, err := yarn.ParseApplicationID(st.App)
	if err != nil {
		return nil, err
	}
	rm, err := yarn.NewRMClient("http://"+st.WebApp, b.cfg.User)
	if err != nil {
		return nil, err
	}
	a := &application{b: b, cfg: b.cfg, job: job, rm: rm, id: id, dir: st.Dir}
	if job != nil { // a re-attach reads the results; a stop needs only the application
		if a.store, err = OpenStore(st.NameNode, b.cfg.User, st.Dir); err != nil {
			return nil, fmt.Errorf("cannot reach the HDFS NameNode at %s: %w", st.NameNode, err)
		}
	}
	b.app = id
	return a, nil
}

func (a *application) Store() remote.Store { return a.store }

func (a *application) String() string { return "YARN application " + a.id.String() }

// Tune runs a task per vcore of each container.
func (a *application) Tune(d *remote.Driver) {
	d.Threads, d.Workers = a.cfg.VCores, a.cfg.Containers*a.cfg.VCores
}

func (a *application) State() []byte {
	st, _ := json.Marshal(runState{App: a.id.String(), NameNode: a.cfg.NameNode, Dir: a.dir, WebApp: a.cfg.WebApp})
	return st
}

// StartWorkers stages the binary and submits the application, whose ApplicationMaster
// (`mapflow yarn-am`) starts the workers in their containers.
func (a *application) StartWorkers(ctx context.Context, bin string) error {
	cfg := a.cfg
	binURL, size, mtime, err := a.store.Upload(cfg.NameNode, bin, "mapflow")
	if err != nil {
		return fmt.Errorf("stage the mapflow binary: %w", err)
	}
	storeURL := "hdfs://" + cfg.NameNode + a.dir
	am := []string{"./mapflow", "yarn-am", "--store", storeURL,
		"--containers", fmt.Sprint(cfg.Containers), "--memory", fmt.Sprint(cfg.MemoryMB),
		"--vcores", fmt.Sprint(cfg.VCores), "--binary", binURL, "--binary-size", fmt.Sprint(size),
		"--binary-mtime", fmt.Sprint(mtime), "--user", cfg.User,
		"1><LOG_DIR>/stdout", "2><LOG_DIR>/stderr"}
	err = a.rm.Submit(ctx, yarn.Submission{
		ID: a.id, Name: "mapflow " + a.job.Name + " " + a.jobID, Type: "MAPFLOW", Queue: cfg.Queue, MaxAttempts: 1,
		Resource: yarn.Resource{MemoryMB: int64(cfg.MemoryMB), VCores: 1},
		AM: yarn.LaunchContext{
			LocalResources: map[string]yarn.LocalResource{"mapflow": {URL: binURL, Size: size, Timestamp: mtime,
				Type: yarn.File, Visibility: yarn.VisibilityApplication}},
			Environment: map[string]string{"HADOOP_USER_NAME": cfg.User},
			Commands:    am,
		},
		Tags: []string{"mapflow", a.jobID},
	})
	if err != nil {
		return fmt.Errorf("submit the application: %w", err)
	}
	a.b.Logf("job staged in %s; YARN application %s", storeURL, a.id)
	return nil
}

// Watch is an error once the application ended, asked of the ResourceManager at most once a
// second.
func (a *application) Watch(ctx context.Context) error { return watchApp(a.rm, a.id)(ctx) }

// Finish waits for the application, which ends on its own once every task has its results,
// and says how YARN saw its end.
func (a *application) Finish(ctx context.Context) error {
	defer a.close()
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	rep, err := a.rm.Wait(ectx, a.id, 250*time.Millisecond)
	if err != nil {
		return fmt.Errorf("every task finished, but YARN application %s did not end: %w", a.id, err)
	}
	a.b.Logf("YARN application %s ended %s/%s", a.id, rep.State, rep.FinalStatus)
	if rep.FinalStatus != "SUCCEEDED" {
		return fmt.Errorf("every task finished, but YARN application %s ended %s/%s: %s",
			a.id, rep.State, rep.FinalStatus, rep.Diagnostics)
	}
	return nil
}

// Stop kills the application, unless it has ended.
func (a *application) Stop(ctx context.Context, _ bool) error {
	defer a.close()
	if rep, err := a.rm.App(ctx, a.id); err == nil && rep.Terminal() {
		return nil
	}
	if err := a.rm.Kill(ctx, a.id); err != nil {
		return fmt.Errorf("kill YARN application %s: %w", a.id, err)
	}
	a.b.Logf("killed YARN application %s", a.id)
	return nil
}

func (a *application) close() {
	if a.store != nil {
		a.store.Close()
	}
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
