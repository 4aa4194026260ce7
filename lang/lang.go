package lang

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/mapflow/mapflow/settings"
)

// Pos is a position in a job file. Line and Column count from 1; Column counts bytes.
type Pos struct {
	Filename string
	Offset   int
	Line     int
	Column   int
}

// String formats p as file:line:col, the form editors and terminals link to.
func (p Pos) String() string { return posString(p) }

// Job is a checked, compiled job file: everything runtime needs to plan and run it.
// Expressions in it are compiled once, when the file is checked.
type Job struct {
	Name     string // from the `job` statement, else the file's base name without .mf
	Filename string // the path the file was loaded from, as given
	Source   []byte // the file's text, stored in the catalog

	// Envs are the declared environments in file order; the first is the default.
	// A file with no env block gets one implicit `env local {}`.
	Envs []*Env

	Func    *Func
	Ship    []Ship
	Params  *Params
	Combine *Expr // nil when the file has no combine statement

	Retries int           // extra attempts after a failed one (0: run once)
	Timeout time.Duration // per attempt; 0: none
	// Recycle is how many tasks a warm worker process runs before it is started afresh
	// (`recycle N`); 0: never.
	Recycle int
	// Cache is set by `cache` (or `cache true`): a task whose cache key matches a Completed
	// task of an earlier run reuses its result instead of running.
	Cache bool

	// Warnings are diagnostics that do not stop the job (e.g. params keys the function ignores).
	Warnings Diagnostics
}

// Env is one environment block: `env KIND [NAME] { key = value ... }`.
type Env struct {
	Kind     string // a kind registered in package settings: "local", "ec2", "hadoop", ...
	Name     string // the block's name; the kind when the block has none
	Pos      Pos
	Settings map[string]Setting // only the keys written; types already checked against the kind's
	// Options is the kind's options struct (a pointer; see package settings), decoded from
	// Settings with the kind's defaults and checked; nil when the block has errors.
	Options any

	prepared bool
	prepErr  error
}

// Prepare prepares the env's options for a command that runs in it (see settings.Preparer),
// stopping when ctx ends:
// what depends on this machine, such as a directory that must exist, is resolved and checked
// once. Problems are Diagnostics that point at the settings.
func (e *Env) Prepare(ctx context.Context) error {
	if e.prepared {
		return e.prepErr
	}
	e.prepared = true
	p, ok := e.Options.(settings.Preparer)
	if !ok {
		return nil
	}
	var ds Diagnostics
	for _, pr := range p.Prepare(ctx) {
		pos := e.Pos
		summary := fmt.Sprintf("env %s %s: %s", e.Kind, e.Name, pr.Message)
		if s, ok := e.Settings[pr.Key]; ok {
			pos = s.Pos
		}
		if pr.Key != "" {
			summary = fmt.Sprintf("setting %q: %s", pr.Key, pr.Message)
		}
		ds = append(ds, Diagnostic{Pos: pos, Summary: summary, Detail: pr.Hint})
	}
	if len(ds) > 0 {
		e.prepErr = ds
	}
	return e.prepErr
}

// Setting is one `key = value` line of an env block. Value is an int64, float64, string, bool,
// time.Duration or []string, as the kind's schema declares for the key.
type Setting struct {
	Value any
	Pos   Pos
}

// Func is the job's function. Calling it with one parameter set gives the task's result, or a
// Command when its body is an exec(...) call.
type Func struct {
	Name   string
	Params []string
	Pos    Pos
	Body   *Expr
	// Canon is the body's tokens one space apart: its text without comments and layout,
	// which is what enters the cache key.
	Canon string
}

// Warm is a function that runs in a long-lived worker process speaking mapflow's line
// protocol: `python(FILE [, FUNCTION])`, run by the Python runner embedded in mapflow, or
// `serve(PROGRAM, ARGS...)`, any program that speaks the protocol.
type Warm struct {
	Kind string // "python" or "serve"
	// Module is python's FILE as written: a .py file or a package directory, relative to the
	// job file's directory (and shipped to every worker).
	Module string
	// Function is the name of the Python function to call.
	Function string
	// Args are serve's program and its arguments.
	Args []string
	Pos  Pos
}

// ModuleDir is the directory, relative to the job file's, that Python imports the module from.
func (w *Warm) ModuleDir() string {
	d := path.Dir(strings.TrimSuffix(w.Module, "/"))
	if d == "." {
		return ""
	}
	return d
}

// ModuleName is the name Python imports: the file's name without .py, or the package
// directory's name.
func (w *Warm) ModuleName() string {
	return strings.TrimSuffix(path.Base(strings.TrimSuffix(w.Module, "/")), ".py")
}

// WarmFunc returns the function's warm spec when its body is python(...) or serve(...), else nil.
func (f *Func) WarmFunc() *Warm {
	if f == nil || f.Body == nil {
		return nil
	}
	return f.Body.Warm
}

// Command is the value an exec(...) body evaluates to: a program and its arguments, run
// without a shell.
type Command struct {
	Args []string
}

// Ship is a file shipped to every worker (`ship "train.py"`).
type Ship struct {
	Path string // as written, relative to the job file's directory; never escapes it
	Abs  string // resolved absolute path
	Pos  Pos
}

// Params is the job's source of parameter sets, in the order the tasks are numbered.
type Params struct {
	Pos  Pos
	Kind string // "list" (an expression), "grid" or "file"
	// Expr for kind "list"; Grid for "grid"; File for "file".
	Expr *Expr
	Grid []GridAxis
	File string // resolved path of a .jsonl or .csv file

	// literal is a list of literals written out (Expr.Text), read without expr-lang, and
	// count its number of elements; see literal.go.
	literal bool
	count   int
}

// GridAxis is one `key: [values]` entry of a grid; axes combine in written order, the last
// varying fastest.
type GridAxis struct {
	Key    string
	Values *Expr
	Pos    Pos
}
