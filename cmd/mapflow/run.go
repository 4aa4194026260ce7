package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/settings"
)

func (a *app) runCommand() *cobra.Command {
	var envName string
	var detach bool
	var jobID string
	var useCache, noCache bool
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a job file: prints the map results and the combined result",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			job, env, err := a.load(cmd.Context(), args[0], envName)
			if err != nil {
				return err
			}
			// A bad line of a params file is found before any task runs, not after the
			// tasks of the lines before it.
			if err := job.Params.ValidateFile(cmd.Context()); err != nil {
				if cmd.Context().Err() != nil {
					return &exitError{code: exitCanceled, err: err}
				}
				return &exitError{code: exitBadInput, err: err}
			}
			if useCache && noCache {
				return &exitError{code: exitBadInput, err: errors.New("--cache and --no-cache: choose one")}
			}
			flag := rt.CacheFromFile
			if useCache {
				flag = rt.CacheOn
			} else if noCache {
				flag = rt.CacheOff
			}
			backend, err := rt.NewBackend(env)
			if err != nil {
				return err
			}
			if detach {
				return a.detach(cmd.Context(), job, args[0], envName, cmd.Flags())
			}
			cat, err := a.openCatalog()
			if err != nil {
				return err
			}
			defer cat.Close()
			if err := cat.Check(cmd.Context()); err != nil {
				return err
			}
			p := a.newProgress(job.Name)
			report, err := rt.Run(cmd.Context(), cat, backend, job, env, rt.Options{Progress: p.update, JobID: jobID, CombineOutput: a.stderr, Cache: flag})
			p.finish()
			return a.finishRun(report, err)
		},
	}
	cmd.Flags().StringVar(&envName, "env", "", "the env block to run in (default: the file's first)")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the job in the background, print its id and return")
	// --job-id is how a detached run learns the id its parent already printed.
	cmd.Flags().StringVar(&jobID, "job-id", "", "the id to give the new job")
	_ = cmd.Flags().MarkHidden("job-id")
	cmd.Flags().BoolVar(&useCache, "cache", false, "reuse the Completed tasks of earlier runs, as the cache statement does")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "run every task, whatever the cache statement says")
	return cmd
}

// load loads and checks a job file and picks its env, printing warnings.
func (a *app) load(ctx context.Context, path, envName string) (*lang.Job, *lang.Env, error) {
	job, err := lang.Load(path)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range job.Warnings {
		fmt.Fprintln(a.stderr, w.Error())
	}
	env, err := job.DefaultEnv(envName)
	if err != nil {
		return nil, nil, &exitError{code: exitBadInput, err: err}
	}
	// What the env's backend needs of this machine (a directory that must exist, say) is
	// checked here, for check and run alike.
	if err := env.Prepare(ctx); err != nil {
		return nil, nil, err
	}
	return job, env, nil
}

// finishRun prints a finished run's outcome and turns it into the exit status.
func (a *app) finishRun(report *rt.Report, err error) error {
	if report == nil {
		if err == nil {
			err = errors.New("the run ended without a report")
		}
		return err
	}
	if err != nil && report.NumDone == 0 && report.NumFailed == 0 && report.Status != rt.Canceled {
		return err // nothing ran (a backend that could not start, say): the error says it all
	}
	cached := -1
	if report.Caching {
		cached = report.NumCached
	}
	a.printOutcome(report.JobID, report.Name, report.Status, report.NumTasks, report.NumDone,
		report.NumFailed, cached, report.MapResults, max(report.NumResults, report.NumTasks), report.Combined, report.CombineErr)
	if err != nil {
		return err
	}
	switch report.Status {
	case rt.Completed:
		if report.CombineErr != nil {
			return &exitError{code: exitFailed}
		}
		return nil
	case rt.Canceled:
		return &exitError{code: exitCanceled}
	default:
		return &exitError{code: exitFailed}
	}
}

// printOutcome prints the first map results (of numResults) and combined result on stdout and
// a summary on stderr; cached is how many tasks reused an earlier run's result, or -1 when
// caching was off.
func (a *app) printOutcome(id, name string, status rt.Status, numTasks, numDone, numFailed, cached int,
	results []any, numResults int, combined any, combineErr error) {
	fmt.Fprintf(a.stdout, "map results: %s\n", formatResults(results, numResults))
	switch {
	case combineErr != nil:
		fmt.Fprintf(a.stdout, "result: error: %v\n", combineErr)
	case numDone < numTasks:
		fmt.Fprintf(a.stdout, "result: %s (partial: %d of %d tasks did not complete)\n",
			formatValue(combined), numTasks-numDone, numTasks)
	default:
		fmt.Fprintf(a.stdout, "result: %s\n", formatValue(combined))
	}
	switch status {
	case rt.Completed:
		fmt.Fprintf(a.stderr, "job %s: %d %s completed\n", id, numTasks, rt.Plural(numTasks, "task", "tasks"))
		a.printCached(name, cached, numDone+numFailed-cached)
	case rt.Canceled:
		fmt.Fprintf(a.stderr, "job %s: canceled; finished tasks are kept (see: mapflow metrics %s)\n", id, name)
		a.printCached(name, cached, numDone+numFailed-cached)
	case rt.Running:
		fmt.Fprintf(a.stderr, "job %s: the driver stopped and left the remote work running; finish the job with mapflow resume %s\n", id, id)
	default:
		if numFailed == 0 {
			fmt.Fprintf(a.stderr, "job %s: Failed, %d of %d tasks did not complete (see: mapflow error %s)\n",
				id, numTasks-numDone, numTasks, name)
			break
		}
		fmt.Fprintf(a.stderr, "job %s: %d of %d tasks failed (see: mapflow metrics %s)\n",
			id, numFailed, numTasks, name)
		a.printCached(name, cached, numDone+numFailed-cached)
	}
}

// printCached says how many tasks were reused and how many ran, when caching was on.
func (a *app) printCached(name string, cached, ran int) {
	if cached < 0 {
		return
	}
	line := fmt.Sprintf("%s cached, %s run", rt.Thousands(cached), rt.Thousands(ran))
	if ran > 0 {
		line += fmt.Sprintf(" (why a task ran: mapflow explain %s TASK)", name)
	}
	fmt.Fprintln(a.stderr, line)
}

// detach starts `mapflow run` as a background process of its own session and prints the id of
// the job it creates. Its output goes to a log file beside the catalog.
func (a *app) detach(ctx context.Context, job *lang.Job, path, envName string, flags *pflag.FlagSet) error {
	catPath, err := a.resolveCatalogPath()
	if err != nil {
		return err
	}
	cat, err := a.openCatalog() // create the catalog first, so the child and we agree on it
	if err != nil {
		return err
	}
	defer cat.Close()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("detach: find own executable: %w", err)
	}
	logDir := filepath.Join(filepath.Dir(catPath), "detached")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	logFile, err := os.CreateTemp(logDir, job.Name+"-*.log")
	if err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	defer logFile.Close()
	id := rt.NewJobID(job.Name, time.Now())
	args := []string{"run", path, "--catalog", catPath, "--job-id", id}
	if envName != "" {
		args = append(args, "--env", envName)
	}
	for _, f := range []string{"cache", "no-cache"} {
		if on, _ := flags.GetBool(f); on {
			args = append(args, "--"+f)
		}
	}
	child := exec.Command(self, args...)
	child.Stdout, child.Stderr = logFile, logFile
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return fmt.Errorf("detach: start background run: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	// The job is known once its row exists; a failed start (say, the catalog is locked) is
	// reported here rather than left in a log nobody reads.
	deadline := time.After(30 * time.Second)
	for {
		_, err := cat.FindJob(ctx, id)
		if err == nil {
			fmt.Fprintln(a.stdout, id)
			fmt.Fprintf(a.stderr, "job %s runs in the background (output: %s); collect it with: mapflow wait %s\n",
				id, logFile.Name(), id)
			return nil
		}
		if !errors.Is(err, catalog.ErrJobNotFound) {
			return err
		}
		select {
		case err := <-exited:
			if _, ferr := cat.FindJob(ctx, id); ferr == nil {
				exited <- err
				continue
			}
			out, _ := os.ReadFile(logFile.Name())
			return fmt.Errorf("detach: the background run ended before creating its job (%v):\n%s", err, out)
		case <-deadline:
			return fmt.Errorf("detach: the background run (pid %d) created no job in 30s; see %s",
				child.Process.Pid, logFile.Name())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// check looks at up to checkSets generated parameter sets, for at most checkTime.
const (
	checkSets = 100000
	checkTime = 5 * time.Second
)

func (a *app) checkCommand() *cobra.Command {
	var envName string
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Parse and validate a job file without running it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			job, err := lang.Load(args[0])
			if err != nil {
				return err
			}
			// The env run would use is prepared as run prepares it: what it needs of this
			// machine (a directory that must exist) is checked too.
			env, err := job.DefaultEnv(envName)
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			if err := env.Prepare(cmd.Context()); err != nil {
				return err
			}
			// Generated parameter sets may be unbounded: a sample of them is looked at, and
			// Ctrl-C stops the look. A params file is read whole.
			ctx, cancel := context.WithTimeout(cmd.Context(), checkTime)
			defer cancel()
			lint, seen := job.LintSets(ctx, checkSets)
			timedOut := ctx.Err() == context.DeadlineExceeded
			if timedOut {
				lint, ctx = nil, cmd.Context() // the sets looked at so far are the sample
			}
			warnings := append(lang.Diagnostics{}, job.Warnings...)
			for _, d := range lint {
				if d.Severity == lang.Warning {
					warnings = append(warnings, d)
				}
			}
			for _, w := range warnings {
				fmt.Fprintln(a.stderr, w.Error())
			}
			if err := lint.Err(); err != nil {
				return err // each error once: Err prints them
			}
			envs := make([]string, len(job.Envs))
			for i, e := range job.Envs {
				envs[i] = e.Name + " (" + e.Kind + ")"
			}
			sets := fmt.Sprintf("%d parameter sets", seen)
			switch {
			case timedOut && seen == 0:
				sets = fmt.Sprintf("parameter sets not looked at: their expression did not end within %s", checkTime)
			case job.Params.Kind != "file" && (seen >= checkSets || timedOut):
				sets = fmt.Sprintf("the first %d parameter sets looked at", seen)
				if n, ok := job.Params.Count(); ok {
					sets = fmt.Sprintf("%d parameter sets (the first %d looked at)", n, seen)
				}
			}
			cache := ""
			if job.Cache {
				cache = ", cache on"
			}
			fmt.Fprintf(a.stdout, "%s: ok: job %s, func %s, envs %v, %s%s\n", args[0], job.Name, job.Func.Name, envs, sets, cache)
			return nil
		},
	}
	cmd.Flags().StringVar(&envName, "env", "", "the env block to check as run would use it (default: the file's first)")
	return cmd
}

func (a *app) envsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "envs [KIND]",
		Short: "List every env kind's settings: type, default, bounds and meaning",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds := settings.Kinds()
			if len(args) == 1 {
				if _, ok := settings.Lookup(args[0]); !ok {
					return usageErr("unknown env kind %q; the kinds are %s", args[0], strings.Join(kinds, ", "))
				}
				kinds = args[:1]
			}
			for i, name := range kinds {
				k, _ := settings.Lookup(name)
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				w := tabwriter.NewWriter(a.stdout, 2, 8, 2, ' ', 0)
				fmt.Fprintf(w, "env %s\n", name)
				for _, o := range k.Options {
					var notes []string
					if o.Required {
						notes = append(notes, "required")
					}
					if o.Default != "" {
						notes = append(notes, "default "+o.Default)
					}
					if o.Bounded {
						notes = append(notes, fmt.Sprintf("%d to %d", o.Min, o.Max))
					}
					fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", o.Key, o.Type.Name(), strings.Join(notes, ", "), o.Help)
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func (a *app) resumeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "resume JOB",
		Short: "Finish a job whose driver died, re-running only tasks not Completed",
		Args:  cobra.ExactArgs(1),
		RunE: a.withJob(func(cmd *cobra.Command, args []string, cat *catalog.Catalog, row *catalog.Job) error {
			return a.resume(cmd.Context(), cat, row)
		}),
	}
}

// resume finishes a job whose driver died, showing progress as run does.
func (a *app) resume(ctx context.Context, cat *catalog.Catalog, row *catalog.Job) error {
	if err := cat.Check(ctx); err != nil {
		return err
	}
	p := a.newProgress(row.Name)
	report, err := rt.Resume(ctx, cat, rt.NewBackend, row, rt.Options{Progress: p.update, CombineOutput: a.stderr})
	p.finish()
	return a.finishRun(report, err)
}

func (a *app) waitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait JOB",
		Short: "Wait for a job to end, then print its results as run does",
		Args:  cobra.ExactArgs(1),
		RunE: a.withJob(func(cmd *cobra.Command, args []string, cat *catalog.Catalog, row *catalog.Job) error {
			for !rt.Status(row.Status).Final() {
				if rt.DriverGone(row) && len(row.BackendState) > 0 {
					// The work goes on remotely without its driver: become its driver.
					fmt.Fprintf(a.stderr, "job %s: its driver is gone; re-attaching to its remote work\n", row.ID)
					return a.resume(cmd.Context(), cat, row)
				}
				if rt.DriverGone(row) {
					return fmt.Errorf("job %s is %s but its driver (pid %d on %s) is gone; finish it with: mapflow resume %s",
						row.ID, row.Status, row.DriverPID, row.DriverHost, row.ID)
				}
				select {
				case <-cmd.Context().Done():
					return &exitError{code: exitCanceled, err: errors.New("interrupted; the job goes on")}
				case <-time.After(200 * time.Millisecond):
				}
				var err error
				if row, err = cat.FindJob(cmd.Context(), row.ID); err != nil {
					return err
				}
			}
			return a.printStored(cmd.Context(), cat, row)
		}),
	}
}

// printStored prints a finished job's outcome from the catalog, as run printed it.
func (a *app) printStored(ctx context.Context, cat *catalog.Catalog, row *catalog.Job) error {
	// Only the results printed are held: a job may have millions.
	results := make([]any, min(row.NumTasks, rt.ShownResults))
	failed, done, cached := 0, 0, -1
	if row.Cache == catalog.CacheReuse {
		cached = 0
	}
	err := cat.Tasks(ctx, row.ID, func(t *catalog.Task) error {
		if t.CachedFrom != "" && cached >= 0 {
			cached++
		}
		if t.Status == string(rt.Completed) {
			if t.Index < len(results) {
				results[t.Index] = decodeJSON(t.Result)
			}
			done++
		}
		if t.Status == string(rt.Failed) {
			failed++
		}
		return nil
	})
	if err != nil {
		return err
	}
	var combineErr error
	if row.Error != "" && row.Status == string(rt.Completed) {
		combineErr = errors.New(row.Error)
	}
	status := rt.Status(row.Status)
	a.printOutcome(row.ID, row.Name, status, row.NumTasks, done, failed, cached, results, row.NumTasks, decodeJSON(row.Result), combineErr)
	switch {
	case status == rt.Canceled:
		return &exitError{code: exitCanceled}
	case status != rt.Completed || combineErr != nil:
		return &exitError{code: exitFailed}
	}
	return nil
}
