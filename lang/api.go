package lang

// This file fixes the API that runtime and the CLI code against. Bodies live in the other files.

// Expr is an expr-lang expression written in a job file, compiled once when the file is checked.
type Expr struct {
	Text string // the expression's source text, exactly as written
	Pos  Pos    // where Text starts in the file

	compiled *compiled
}

// EvalError is a failed evaluation of the function or the combiner, classified the way the
// catalog records task failures.
type EvalError struct {
	Exception string // short class name: TypeError, KeyError, ZeroDivisionError, ValueError, ...
	Message   string // e.g. "unsupported operand types for +: null and int"
	Pos       Pos    // where in the job file it arose
	Traceback string // the file position, the source line and a caret under the column
}

func (e *EvalError) Error() string { return e.Pos.String() + ": " + e.Exception + ": " + e.Message }

// The functions below are implemented in parse.go, check.go, eval.go and params.go.
// Stubs until then, so that the packages above lang compile.

type compiled struct{}

// Load reads, parses and checks the job file at path. Its error is a Diagnostics.
func Load(path string) (*Job, error) { return nil, errStub }

// Parse parses a job file's text; filename is used in positions only. Its error is a
// Diagnostics.
func Parse(filename string, src []byte) (*File, error) { return nil, errStub }

// Check validates a parsed file and compiles its expressions. Relative paths (ship, params
// files) resolve against the file's directory. Its error is a Diagnostics holding every
// problem found; warnings are in Job.Warnings.
func Check(f *File) (*Job, error) { return nil, errStub }

// File is a parsed job file (the syntax tree).
type File struct{}

// DefaultEnv returns the env named name, or the default (first) env when name is "".
func (j *Job) DefaultEnv(name string) (*Env, error) { return nil, errStub }

// Uses tells whether the combiner refers to the variable name ("results" or "tasks"), so
// the runtime builds only what the combiner reads.
func (e *Expr) Uses(name string) bool { return false }

// Eval evaluates e with the given variables. A failure is an *EvalError.
func (e *Expr) Eval(vars map[string]any) (any, error) { return nil, errStub }

// Caller calls a Func many times; one Caller per goroutine (it reuses a VM).
type Caller struct{}

// NewCaller returns a Caller for f.
func (f *Func) NewCaller() *Caller { return &Caller{} }

// Call evaluates the function for one parameter set. A parameter missing from params fails
// with a KeyError; keys the function does not take are ignored. The result is a JSON-like
// value, or a Command for an exec(...) body. A failure is an *EvalError.
func (c *Caller) Call(params map[string]any) (any, error) { return nil, errStub }

// Each calls fn for every parameter set in order, streaming file sources. An error in the
// source (a bad line, an element that is not an object) names its file and line or the
// params statement's position.
func (p *Params) Each(fn func(index int, set map[string]any) error) error { return errStub }

var errStub = &EvalError{Exception: "NotImplemented", Message: "lang is being written"}
