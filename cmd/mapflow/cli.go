package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
)

// Exit statuses, documented in the README.
const (
	exitOK       = 0
	exitFailed   = 1 // a task failed, the job was canceled, or mapflow itself failed
	exitBadInput = 2 // a bad job file, a bad flag or argument
	exitCanceled = 130
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries the exit status a command wants; its message (if any) is printed once.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as the user's mistake in how mapflow was called.
func usageErr(format string, args ...any) error {
	return &exitError{code: exitBadInput, err: fmt.Errorf(format, args...)}
}

// app is one invocation's state: where output goes and the catalog it uses.
type app struct {
	stdout, stderr io.Writer
	catalogPath    string
}

// Main runs the mapflow command line with args and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first Ctrl-C or SIGTERM stops the command cleanly; the second ends it at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitFailed
	var ee *exitError
	var diags lang.Diagnostics
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.As(err, &diags):
		code = exitBadInput
	case isUsageError(err):
		code = exitBadInput
	}
	if ctx.Err() != nil {
		code = exitCanceled // interrupted: Ctrl-C or SIGTERM
	}
	if msg := err.Error(); msg != "" {
		if errors.As(err, &diags) {
			fmt.Fprintln(stderr, msg)
		} else {
			fmt.Fprintln(stderr, "mapflow: "+msg)
		}
	}
	return code
}

// isUsageError recognises cobra's own complaints about flags and arguments.
func isUsageError(err error) bool {
	var fe *flagError
	return errors.As(err, &fe)
}

// flagError wraps cobra's flag and argument errors so Main maps them to exit status 2.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "mapflow",
		Short: "Run one function over many parameter sets and record every task",
		Long: `mapflow runs the function of a .mf job file over its parameter sets, on this machine
or on a cluster, and records every task (params, result, status, timings, host, exception)
in an SQLite catalog that "mapflow sql" queries.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.PersistentFlags().StringVar(&a.catalogPath, "catalog", "",
		"catalog file (default $MAPFLOW_CATALOG, else $XDG_DATA_HOME/mapflow/catalog.db)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &flagError{err} })

	root.AddCommand(
		a.runCommand(),
		a.checkCommand(),
		a.envsCommand(),
		a.statusCommand(),
		a.waitCommand(),
		a.resultsCommand(),
		a.mapResultsCommand(),
		a.metricsCommand(),
		a.sqlCommand(),
		a.jobsCommand(),
		a.cancelCommand(),
		a.logsCommand(),
		a.errorCommand(),
		a.resumeCommand(),
		a.reportCommand(),
		a.explainCommand(),
		a.diffCommand(),
		a.workerCommand(),
		a.yarnAMCommand(),
		a.versionCommand(),
	)
	for _, c := range root.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return root
}

// wrapArgs makes argument-count errors usage errors (exit status 2).
func wrapArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	if check == nil {
		return nil
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &flagError{fmt.Errorf("%s: %w (usage: mapflow %s)", cmd.Name(), err, cmd.Use)}
		}
		return nil
	}
}

// openCatalog opens the catalog for reading and writing.
func (a *app) openCatalog() (*catalog.Catalog, error) {
	return openCatalogAt(a.resolveCatalogPath())
}

func openCatalogAt(path string, err error) (*catalog.Catalog, error) {
	if err != nil {
		return nil, err
	}
	cat, err := catalog.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	return cat, nil
}

// openExistingCatalog opens the catalog for a command that reads it (and may mark a job in
// it): one that does not exist is an error, not a new empty file with its directory.
func (a *app) openExistingCatalog() (*catalog.Catalog, error) {
	return openCatalogAt(a.existingCatalogPath())
}

// existingCatalogPath is the catalog's path, or an error when no file is there.
func (a *app) existingCatalogPath() (string, error) {
	path, err := a.resolveCatalogPath()
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) || (err == nil && st.Size() == 0) {
		return "", &exitError{code: exitBadInput, err: fmt.Errorf(
			"no catalog at %s (mapflow run makes it; --catalog or $MAPFLOW_CATALOG names another)", path)}
	}
	return path, nil
}

func (a *app) resolveCatalogPath() (string, error) {
	if a.catalogPath != "" {
		return a.catalogPath, nil
	}
	return catalog.DefaultPath()
}

// findJob opens the catalog and finds JOB (an id, or a name for its latest run).
func (a *app) findJob(ctx context.Context, ref string) (*catalog.Catalog, *catalog.Job, error) {
	cat, err := a.openExistingCatalog()
	if err != nil {
		return nil, nil, err
	}
	j, err := findIn(ctx, cat, ref)
	if err != nil {
		cat.Close()
		return nil, nil, err
	}
	return cat, j, nil
}

// findIn finds JOB in an open catalog.
func findIn(ctx context.Context, cat *catalog.Catalog, ref string) (*catalog.Job, error) {
	j, err := cat.FindJob(ctx, ref)
	if err != nil {
		if errors.Is(err, catalog.ErrJobNotFound) {
			if strings.Contains(err.Error(), "asks for the run") || strings.Contains(err.Error(), "NAME~N") {
				return nil, &exitError{code: exitBadInput,
					err: fmt.Errorf("%s (list them with: mapflow jobs)", strings.TrimPrefix(err.Error(), catalog.ErrJobNotFound.Error()+": "))}
			}
			return nil, &exitError{code: exitBadInput,
				err: fmt.Errorf("no job with id or name %q in the catalog (list them with: mapflow jobs)", ref)}
		}
		return nil, err
	}
	return j, nil
}

// withJob makes the RunE of a command whose first argument is a JOB (an id, or a name for its
// latest run): fn gets the open catalog and the job's row.
func (a *app) withJob(fn func(cmd *cobra.Command, args []string, cat *catalog.Catalog, row *catalog.Job) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cat, row, err := a.findJob(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		defer cat.Close()
		return fn(cmd, args, cat, row)
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mapflow's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.stdout, "mapflow %s\n", versionString())
			return nil
		},
	}
}

// versionString is the release version set at link time, else what the Go toolchain recorded:
// the module version, or the git commit the binary was built from.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if version != "dev" || !ok {
		return version
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev == "" {
		return version
	}
	return "dev (" + shortHash(rev) + modified + ", " + info.GoVersion + ")"
}
