package lang

// Expr is an expr-lang expression written in a job file, compiled once when the file is checked.
type Expr struct {
	Text string // the expression's source text, exactly as written
	Pos  Pos    // where Text starts in the file

	// Warm is set when the expression is a python(...) or serve(...) call: the function runs
	// in a long-lived worker process, and the expression itself is never evaluated.
	Warm *Warm

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

// Error formats e on one line: file:line:col: Exception: message.
func (e *EvalError) Error() string { return e.Pos.String() + ": " + e.Exception + ": " + e.Message }
