package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mapflow/mapflow/lang"
)

// stderrTailLines is how many of a failed program's last standard error lines become its
// traceback.
const stderrTailLines = 20

// pipeGrace is how long an attempt waits, after its program exited and its process group was
// killed, for a process that escaped the group to close the output pipes it inherited.
const pipeGrace = 2 * time.Second

// Executor runs the attempts of one task at a time. It is the one code path that runs tasks:
// the local backend's workers call it, and so does `mapflow worker` on a remote host, so a task
// behaves the same wherever it runs. An Executor is safe for concurrent use; each goroutine
// brings its own lang.Caller.
type Executor struct {
	Job  *lang.Job
	Host string // recorded as every attempt's host

	// ShipDir holds the job's shipped files under their Ship.Path names (the job file's
	// directory locally; a staging directory on a remote worker).
	ShipDir string
	// WorkRoot is where the per-attempt working directories of exec tasks are made; "" is the
	// system's temporary directory.
	WorkRoot string
	// MaxOutput bounds how many bytes of each output stream are kept at the head and again at
	// the tail; 0 is DefaultMaxOutput.
	MaxOutput int
	// JobID is the catalog's id of the job, given to every task's processes as MAPFLOW_JOB_ID
	// so that KillStray can find the ones that outlive their task.
	JobID string
	// Python is the interpreter of python(...) functions; "" is DefaultPython. PythonAt is
	// where the job file names it ("file:line:col"), for errors; "" when it does not.
	Python   string
	PythonAt string

	envOnce sync.Once
	environ []string

	// Working directories of earlier attempts that ended empty, for the next attempts of a
	// job that ships nothing: making and removing a directory per attempt was a tenth of the
	// time of a program as short as /bin/true (bench/).
	dirMu    sync.Mutex
	freeDirs []string

	// Worker processes started by Preflight, for the first Slots.
	idleMu sync.Mutex
	idle   []*warmProc
}

// Close stops the worker processes no Slot took and removes the working directories kept for
// reuse. The Executor may be used again.
func (e *Executor) Close() error {
	e.stopIdle()
	e.dirMu.Lock()
	dirs := e.freeDirs
	e.freeDirs = nil
	e.dirMu.Unlock()
	var errs []error
	for _, d := range dirs {
		errs = append(errs, os.Remove(d))
	}
	return errors.Join(errs...)
}

// Run runs task t: it calls the job's function with t's parameters and, when that gives a
// Command, runs the program, up to 1 + Job.Retries attempts in all (fewer when t.Attempt says
// some were made already), each under Job.Timeout. It reports TaskStarted when a program's
// attempt begins, TaskRetrying for a failed attempt that will be tried again, and exactly one
// TaskFinished. An expression's failure is final (evaluating it again would fail again); so
// is a cancellation of ctx, reported as a Canceled result. An expression stops at the next
// turn of a loop once ctx ends or Job.Timeout passes (TimeoutError).
func (e *Executor) Run(ctx context.Context, caller *lang.Caller, t Task, r Reporter) {
	res := NewResult()
	res.Index, res.Attempt, res.Host = t.Index, t.Attempt+1, e.Host
	res.Start = time.Now()
	evalCtx := ctx
	if e.Job.Timeout > 0 && !e.Job.Func.IsExec() {
		var cancel context.CancelFunc
		evalCtx, cancel = context.WithTimeout(ctx, e.Job.Timeout)
		defer cancel()
	}
	v, err := call(evalCtx, caller, t.Params)
	res.End = time.Now()
	if err != nil && ctx.Err() != nil {
		res.Status, res.Message = Canceled, "canceled while running"
		r.Report(Event{Kind: TaskFinished, Result: res})
		return
	}
	if err != nil {
		setEvalError(res, err)
		if res.Exception == "TimeoutError" && evalCtx.Err() != nil {
			res.Message = fmt.Sprintf("attempt %d exceeded the %s timeout", res.Attempt, e.Job.Timeout)
		}
		r.Report(Event{Kind: TaskFinished, Result: res})
		return
	}
	var cmd *lang.Command
	switch c := v.(type) {
	case lang.Command:
		cmd = &c
	case *lang.Command:
		cmd = c
	}
	if cmd == nil {
		res.Status = Completed
		res.Value = v
		if res.ValueJSON, err = MarshalJSON(v); err != nil {
			res.Status, res.Value, res.ValueJSON = Failed, nil, nil
			res.Exception = "ValueError"
			res.Message = "the result cannot be stored as JSON: " + err.Error()
		}
		r.Report(Event{Kind: TaskFinished, Result: res})
		return
	}

	e.RunCommand(ctx, cmd, t, r)
}

// RunCommand runs the attempts of a task whose function gave cmd, as Run does.
func (e *Executor) RunCommand(ctx context.Context, cmd *lang.Command, t Task, r Reporter) {
	attempts := max(1+e.Job.Retries-t.Attempt, 1)
	for i := 0; ; i++ {
		res := e.runAttempt(ctx, cmd, t, t.Attempt+i+1, r)
		if res.Status == Failed && i+1 < attempts && ctx.Err() == nil {
			r.Report(Event{Kind: TaskRetrying, Result: res})
			continue
		}
		r.Report(Event{Kind: TaskFinished, Result: res})
		return
	}
}

// call calls the function, turning a panic inside the evaluator into an error rather than
// the end of the driver.
func call(ctx context.Context, caller *lang.Caller, params map[string]any) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error in the evaluator: %v", p)
		}
	}()
	return caller.CallContext(ctx, params)
}

func setEvalError(res *Result, err error) {
	res.Status = Failed
	var ee *lang.EvalError
	if errors.As(err, &ee) {
		res.Exception, res.Message, res.Traceback = ee.Exception, ee.Message, ee.Traceback
		return
	}
	res.Exception, res.Message = "RuntimeError", err.Error()
}

// runAttempt runs one attempt of a program in a fresh working directory and returns its result.
func (e *Executor) runAttempt(ctx context.Context, cmd *lang.Command, t Task, attempt int, r Reporter) *Result {
	res := NewResult()
	res.Index, res.Attempt, res.Host, res.Start = t.Index, attempt, e.Host, time.Now()
	started := NewResult()
	*started = *res
	r.Report(Event{Kind: TaskStarted, Result: started})
	defer func() { res.End = time.Now() }()

	fail := func(exception, format string, args ...any) *Result {
		res.Status, res.Exception, res.Message = Failed, exception, fmt.Sprintf(format, args...)
		return res
	}
	if len(cmd.Args) == 0 || cmd.Args[0] == "" {
		return fail("ValueError", "exec needs a program to run")
	}
	for i, a := range cmd.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return fail("ValueError", "exec argument %d (%.40q) holds a NUL byte, which no program argument can carry", i, a)
		}
	}
	if ctx.Err() != nil {
		res.Status, res.Message = Canceled, "canceled before the attempt started"
		return res
	}
	dir, err := e.prepareDir(t, attempt)
	if dir != "" {
		defer e.releaseDir(dir)
	}
	if err != nil {
		return fail("OSError", "task %s attempt %d: prepare its working directory: %v", t.Name, attempt, err)
	}

	actx := ctx
	if e.Job.Timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, e.Job.Timeout)
		defer cancel()
	}

	max := e.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	stdout, stderr := NewBoundedBuffer(max), NewBoundedBuffer(max)
	resultLine := &lastLineWriter{max: MaxResultLine}
	state, runErr := e.startAndWait(actx, cmd, dir, t, attempt, io.MultiWriter(stdout, resultLine), stderr)
	res.Stdout, res.Stderr = nonEmpty(stdout.Bytes()), nonEmpty(stderr.Bytes())
	if runErr != nil {
		return fail(startErrorClass(runErr), "task %s attempt %d: start %q: %v", t.Name, attempt, cmd.Args[0], unwrapStart(runErr))
	}

	switch {
	case ctx.Err() != nil:
		res.Status, res.Message = Canceled, "canceled while running"
		return res
	case actx.Err() != nil:
		// What the attempt started outside its process group (setsid) goes with it.
		KillStray(e.JobID, "MAPFLOW_TASK_INDEX="+strconv.Itoa(t.Index), "MAPFLOW_ATTEMPT="+strconv.Itoa(attempt))
		res.Traceback = lastLines(stderr.Tail(), stderrTailLines)
		return fail("TimeoutError", "attempt %d exceeded the %s timeout", attempt, e.Job.Timeout)
	}
	code := state.ExitCode()
	if code != 0 {
		res.Traceback = lastLines(stderr.Tail(), stderrTailLines)
		if ws, ok := exitSignal(state); ok {
			return fail("ExitError", "killed by signal %d", ws)
		}
		res.ExitCode = &code
		return fail("ExitError", "exit status %d", code)
	}
	res.ExitCode = &code
	line, tooLong := resultLine.line()
	if tooLong {
		return fail("ValueError", "the result (the last line of standard output) is longer than %d MiB", MaxResultLine>>20)
	}
	res.Status = Completed
	switch {
	case line == nil:
		res.ValueJSON = []byte("null")
	case json.Valid(line):
		var buf bytes.Buffer
		if json.Compact(&buf, line) == nil {
			line = buf.Bytes()
		}
		res.ValueJSON = line
		res.Value = DecodeJSON(line)
	default:
		res.Value = string(line)
		res.ValueJSON, _ = MarshalJSON(res.Value)
	}
	return res
}

// startAndWait runs the program in its own process group and waits for it. When ctx ends
// first the whole group is killed; when the program exits, what it left running in its group
// is killed too, so a task never outlives its attempt.
func (e *Executor) startAndWait(ctx context.Context, cmd *lang.Command, dir string, t Task, attempt int,
	stdout, stderr io.Writer) (*os.ProcessState, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	c := exec.Command(cmd.Args[0], cmd.Args[1:]...)
	c.Dir = dir
	c.Env = append(e.baseEnv(),
		"MAPFLOW_TASK_INDEX="+strconv.Itoa(t.Index),
		"MAPFLOW_TASK_NAME="+t.Name,
		"MAPFLOW_ATTEMPT="+strconv.Itoa(attempt),
		"MAPFLOW_JOB="+e.Job.Name,
	)
	c.Stdout, c.Stderr = outW, errW
	c.SysProcAttr = newProcAttr()
	err = c.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	pgid := c.Process.Pid

	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); io.Copy(stdout, outR) }()
	go func() { defer copies.Done(); io.Copy(stderr, errR) }()

	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	select {
	case <-waited:
	case <-ctx.Done():
		killGroup(pgid)
		<-waited
	}
	killGroup(pgid)

	copied := make(chan struct{})
	go func() { copies.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(pipeGrace):
		// A process outside the group still holds the pipes: stop reading them.
		outR.Close()
		errR.Close()
		<-copied
	}
	outR.Close()
	errR.Close()
	return c.ProcessState, nil
}

func (e *Executor) baseEnv() []string {
	e.envOnce.Do(func() {
		e.environ = os.Environ()
		if e.JobID != "" {
			e.environ = append(e.environ, "MAPFLOW_JOB_ID="+e.JobID)
		}
	})
	return e.environ[:len(e.environ):len(e.environ)]
}

// prepareDir makes the attempt's working directory and copies the shipped files into it.
// Copies, not hard links: a task that rewrote a linked file would change the user's own file
// (locally ShipDir is the job file's directory), and the kernel copies without a round trip
// through user space (copy_file_range).
func (e *Executor) prepareDir(t Task, attempt int) (string, error) {
	root := e.WorkRoot
	if root == "" {
		root = os.TempDir()
	}
	if len(e.Job.Ship) == 0 {
		e.dirMu.Lock()
		if n := len(e.freeDirs); n > 0 {
			dir := e.freeDirs[n-1]
			e.freeDirs = e.freeDirs[:n-1]
			e.dirMu.Unlock()
			return dir, nil
		}
		e.dirMu.Unlock()
		return os.MkdirTemp(root, "mapflow-task-")
	}
	dir, err := os.MkdirTemp(root, fmt.Sprintf("%s-a%d-", t.Name, attempt))
	if err != nil {
		return "", err
	}
	for _, s := range e.Job.Ship {
		src := filepath.Join(e.ShipDir, filepath.FromSlash(s.Path))
		dst := filepath.Join(dir, filepath.FromSlash(s.Path))
		if err := copyTree(src, dst); err != nil {
			return dir, fmt.Errorf("ship %q: %w", s.Path, err)
		}
	}
	return dir, nil
}

// releaseDir ends an attempt's use of its working directory: one that is as the attempt found
// it (empty, private, a directory) is kept for the next attempt of a job that ships nothing;
// any other is removed with what the attempt left in it.
func (e *Executor) releaseDir(dir string) {
	if len(e.Job.Ship) == 0 && emptyPrivateDir(dir) {
		e.dirMu.Lock()
		e.freeDirs = append(e.freeDirs, dir)
		e.dirMu.Unlock()
		return
	}
	os.RemoveAll(dir)
}

// emptyPrivateDir tells whether dir is a directory of mode 0700 without entries.
func emptyPrivateDir(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		return false
	}
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return err == io.EOF
}

// copyTree copies the file or directory src to dst, keeping permission bits.
func copyTree(src, dst string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return CopyFile(src, dst, info.Mode().Perm())
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		return CopyFile(path, target, info.Mode().Perm())
	})
}

// CopyFile copies src to a new file dst (its directory made as needed) with mode perm; it
// fails when dst exists.
func CopyFile(src, dst string, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := OpenRegular(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// OpenRegular opens a regular file for reading, and refuses anything else without waiting for
// it: opening a named pipe would wait for a writer for ever.
func OpenRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, lang.FileKind(st.Mode()))
	}
	return f, nil
}

// startErrorClass names the exception for a program that could not start.
func startErrorClass(err error) string {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return "FileNotFoundError"
	case errors.Is(err, fs.ErrPermission):
		return "PermissionError"
	}
	return "OSError"
}

// unwrapStart drops the program name that exec's errors repeat.
func unwrapStart(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
