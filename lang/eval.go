package lang

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	exprrt "github.com/expr-lang/expr/vm/runtime"
)

// exprKind is what an expression is for; it decides the names it may use.
type exprKind int

const (
	kindFunc exprKind = iota
	kindParams
	kindCombine
)

// errTooLarge says a result holds more values than a task's result may.
const errTooLarge = "the result holds more than 10,000,000 values (a list inside it many times over, say) or nests deeper than 10,000 levels"

// exprBudget is the memory budget of expr-lang's VM (its unit is roughly one allocated
// element, of some tens of bytes) for every expression: the function, params and the combiner
// alike. A budget of 2^34 for params and combiners let `combine map(1..10000000000, #)` take the
// driver down; streamed params (map(A..B, ...) at the top) count one chunk at a time, and a
// combiner reads results and tasks without building them.
const exprBudget = 1e7

// maxString bounds a string that repeat(...) builds: expr-lang's own repeat allocates the
// string before it counts it against the budget.
const maxString = 64 << 20

// compiled is an expression compiled by Check.
type compiled struct {
	program *vm.Program
	uses    map[string]bool // the variables the expression refers to
	exec    bool            // the body is an exec(...) call
	src     []byte          // the whole job file, for tracebacks
	where   string          // "func add(x, y)", "params", "combine"
	budget  uint
	stream  *rangeStream // for params of the form map(A..B, ...); nil otherwise
	// counted: the expression has predicates, whose turns count in a "__mem" variable that
	// each evaluation gives it (see withMem)
	counted bool
}

// evalFail is an error raised by the functions mapflow adds to expr-lang, already classified.
type evalFail struct {
	exception string
	message   string
}

func (e *evalFail) Error() string { return e.message }

// nameVisitor walks an expression's tree once, before expr-lang type-checks it: it patches
// `null` to nil and `/` to __div, and records what the name check needs. ast.Walk visits
// children before their parent, so the last node visited is the root.
type nameVisitor struct {
	idents   []*ast.IdentifierNode
	callees  map[*ast.IdentifierNode]bool
	declared map[string]bool
	execs    []*ast.CallNode
	warms    []*ast.CallNode // python(...) and serve(...)
	root     ast.Node
	counted  bool // the expression has predicates, made to call __tick
}

func (v *nameVisitor) Visit(node *ast.Node) {
	v.root = *node
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if n.Value == "null" {
			ast.Patch(node, &ast.NilNode{})
			v.root = *node
			return
		}
		v.idents = append(v.idents, n)
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			v.callees[id] = true
			switch id.Value {
			case "exec":
				v.execs = append(v.execs, n)
			case "python", "serve":
				v.warms = append(v.warms, n)
			}
		}
	case *ast.VariableDeclaratorNode:
		v.declared[n.Name] = true
	case *ast.PredicateNode:
		// Each turn of a predicate looks whether the evaluation was stopped (Ctrl-C, a
		// timeout) and counts against maxTurns: nested predicates over one list can turn
		// 10^10 times without allocating, which the memory budget does not bound.
		mem := &ast.IdentifierNode{Value: memVar}
		mem.SetLocation(n.Node.Location())
		b := &ast.BuiltinNode{Name: "__tick", Arguments: []ast.Node{n.Node, mem}}
		b.SetLocation(n.Node.Location())
		n.Node = b
		v.counted = true
	case *ast.BinaryNode:
		// Operators whose cost expr-lang does not bound become builtins that do (see
		// builtins.go): + (strings), == and != (nested lists), matches (regexps), / (by zero).
		name := map[string]string{"/": "__div", "+": "__add", "==": "__eq", "!=": "__ne", "matches": "__matches"}[n.Operator]
		if name == "" {
			return
		}
		var b ast.Node = &ast.BuiltinNode{Name: name, Arguments: []ast.Node{n.Left, n.Right}}
		if name == "__div" {
			callee := &ast.IdentifierNode{Value: "__div"}
			callee.SetLocation(n.Location())
			b = &ast.CallNode{Callee: callee, Arguments: []ast.Node{n.Left, n.Right}}
		}
		b.SetLocation(n.Location())
		ast.Patch(node, b)
		v.root = *node
	}
	if call, ok := (*node).(*ast.CallNode); ok {
		if _, method := call.Callee.(*ast.MemberNode); method {
			// A method of a Go value (date(...).Format(s)) builds what it likes: its result
			// is counted like a builtin's.
			b := &ast.BuiltinNode{Name: "__sized", Arguments: []ast.Node{call}}
			b.SetLocation(call.Location())
			ast.Patch(node, b)
			v.root = *node
		}
	}
}

// memVar is the variable through which an evaluation's state reaches __add and __tick.
const memVar = "__mem"

// maxTurns bounds the turns of predicates in one evaluation: about as many as the memory
// budget's values, a few seconds of work.
const maxTurns = 20_000_000

// evalState is what one evaluation carries through memVar: the turns of its predicates, and
// the context whose end stops the evaluation.
type evalState struct {
	turns int
	ctx   context.Context
	done  <-chan struct{} // ctx.Done(); nil when the evaluation cannot be stopped
}

// withMem returns env with a fresh evalState in it, for an expression that counts.
func withMem(ctx context.Context, env map[string]any) map[string]any {
	out := make(map[string]any, len(env)+1)
	for k, v := range env {
		out[k] = v
	}
	out[memVar] = &evalState{ctx: ctx, done: ctx.Done()}
	return out
}

// tick is called at each turn of a predicate with the turn's value, which it returns: it fails
// the evaluation once its context has ended.
func tick(args ...any) (any, uint, error) {
	if st, ok := args[1].(*evalState); ok {
		if st.turns++; st.turns > maxTurns {
			return nil, 0, &evalFail{"MemoryError", fmt.Sprintf("the expression's loops turned more than %d times", maxTurns)}
		}
		if st.done != nil {
			select {
			case <-st.done:
				return nil, 0, stopped(st.ctx)
			default:
			}
		}
	}
	return args[0], 0, nil
}

// stopped is the failure of an evaluation whose context ended.
func stopped(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &evalFail{"TimeoutError", "the evaluation ran past its time limit"}
	}
	return &evalFail{"Interrupted", "the evaluation was interrupted"}
}

func exprOptions(v *nameVisitor, kind exprKind) []expr.Option {
	opts := []expr.Option{
		expr.AllowUndefinedVariables(),
		expr.Patch(v),
		expr.Function("__div", divide),
		expr.Function("exec", execCommand),
		expr.Function("python", notEvaluated),
		expr.Function("serve", notEvaluated),
	}
	if kind == kindParams {
		// A params expression may be long (a list of sets that are not all literals; a list of
		// literals is read without expr-lang); the bound keeps expr-lang's checker and
		// compiler, which recurse over the tree, within their stack.
		opts = append(opts, expr.MaxNodes(maxParamsNodes))
	}
	return opts
}

// compile compiles an expression of the given kind; fn is the function for kindFunc.
// Problems are reported to c; the returned Expr is not compiled when there were any.
func (c *checker) compile(n *exprNode, kind exprKind, fn *Func) *Expr {
	if n == nil {
		return nil
	}
	e := &Expr{Text: n.text, Pos: n.Pos}
	var vars []string
	var where, varsDetail string
	switch kind {
	case kindFunc:
		vars = fn.Params
		where = fmt.Sprintf("func %s(%s)", fn.Name, strings.Join(fn.Params, ", "))
		varsDetail = "the function takes " + strings.Join(fn.Params, ", ")
		if len(fn.Params) == 0 {
			varsDetail = "the function takes no parameters"
		}
	case kindCombine:
		vars = []string{"results", "tasks"}
		where = "combine"
		varsDetail = "the combiner sees only results (the successful map results, in order) and tasks (task name -> result or null)"
	case kindParams:
		where = "params"
		varsDetail = "params expressions have no variables; write the values"
	}
	v := &nameVisitor{callees: map[*ast.IdentifierNode]bool{}, declared: map[string]bool{}}
	program, err := expr.Compile(e.Text, exprOptions(v, kind)...)

	bad := false
	report := func(loc file.Location, detail, format string, args ...any) {
		bad = true
		c.errorf(e.posAt(loc.From), detail, format, args...)
	}
	uses := map[string]bool{}
	for _, id := range v.idents {
		switch {
		case v.callees[id]:
			if !slices.Contains(ownFunctions, id.Value) {
				report(id.Location(), didYouMean(id.Value, append(ownFunctions, builtin.Names...), "expr-lang's functions are"), "unknown function %s", id.Value)
			}
		case slices.Contains(vars, id.Value):
			uses[id.Value] = true
		case v.declared[id.Value]:
		default:
			detail := varsDetail
			if s := suggest(id.Value, vars); s != "" {
				detail = fmt.Sprintf("did you mean %q? %s", s, varsDetail)
			}
			report(id.Location(), detail, "unknown name %s", id.Value)
		}
	}
	isExec := false
	for _, call := range v.execs {
		switch {
		case kind != kindFunc:
			report(call.Location(), "only a func body runs a program", "exec(...) is not allowed in %s", where)
		case call != v.root:
			report(call.Location(), `a func either computes an expression or runs a program: func f(x) = exec("prog", x)`, "exec(...) must be the whole function body")
		case len(call.Arguments) == 0:
			report(call.Location(), `name the program and its arguments: exec("python3", "train.py", x)`, "exec needs a program to run")
		default:
			isExec = true
		}
	}
	for _, call := range v.warms {
		name := call.Callee.(*ast.IdentifierNode).Value
		switch {
		case kind == kindParams, kind == kindCombine && name == "serve":
			report(call.Location(), "only a func body runs in a worker process; a combiner may call python(FILE, FUNCTION)", "%s(...) is not allowed in %s", name, where)
		case call != v.root:
			report(call.Location(), fmt.Sprintf(`a %s is either an expression or a call of a function in a worker: %s`, whereKind(kind), warmExample(name, kind)), "%s(...) must be the whole %s", name, wholeWhat(kind))
		default:
			w, at, detail, problem := c.warmSpec(name, call, kind, e)
			if problem != "" {
				report(at, detail, "%s", problem)
				continue
			}
			e.Warm = w
		}
	}
	if bad {
		return e
	}
	if err != nil {
		c.diags = append(c.diags, e.compileDiagnostic(err, where))
		return e
	}
	budget := uint(exprBudget)
	e.compiled = &compiled{program: program, uses: uses, exec: isExec, src: c.f.Source, where: where, budget: budget, counted: v.counted}
	if kind == kindParams {
		e.compiled.stream = compileRangeStream(e.Text, v.root, func(nv *nameVisitor) []expr.Option { return exprOptions(nv, kind) })
	}
	return e
}

func (e *Expr) compileDiagnostic(err error, where string) Diagnostic {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return Diagnostic{Pos: e.Pos, Summary: fmt.Sprintf("in %s: %v", where, err)}
	}
	pos := e.posAt(fe.From)
	detail := "the " + where + " expression is written in expr-lang (https://expr-lang.org/docs/language-definition)"
	if where != "params" && where != "combine" {
		detail = "the func body is written in expr-lang (https://expr-lang.org/docs/language-definition)"
	}
	if e.pointerBefore(pos) {
		detail = "inside brackets # is expr-lang's element pointer, not a comment; write comments there as // or /* */"
	}
	msg := fe.Message
	if msg == "" {
		msg = "syntax error"
	}
	if strings.Contains(msg, "exceeds maximum allowed nodes") {
		msg, detail = "the "+where+" expression is too large", `write the parameter sets in a params file (params file "sets.jsonl"), or as literals only`
	}
	return Diagnostic{Pos: pos, Summary: lowerFirst(msg), Detail: detail}
}

// pointerBefore tells whether a `#` starts a word on pos's line at or before pos: the likely
// cause of an error is a `#` meant as a comment inside brackets.
func (e *Expr) pointerBefore(pos Pos) bool {
	off := pos.Offset - e.Pos.Offset
	if off < 0 || off > len(e.Text) {
		return false
	}
	start := strings.LastIndexByte(e.Text[:off], '\n') + 1
	end := off + 1
	if nl := strings.IndexByte(e.Text[min(off, len(e.Text)):], '\n'); nl >= 0 {
		end = off + nl
	} else {
		end = len(e.Text)
	}
	line := e.Text[start:end]
	for i := 0; i+1 < len(line); i++ {
		if line[i] == '#' && (line[i+1] == ' ' || line[i+1] == '\t') && !inString(line, i) {
			return true
		}
	}
	return false
}

// inString roughly tells whether byte i of line is inside a quoted string.
func inString(line string, i int) bool {
	var q byte
	for j := 0; j < i; j++ {
		switch {
		case q == 0 && (line[j] == '"' || line[j] == '\'' || line[j] == '`'):
			q = line[j]
		case q != 0 && line[j] == '\\':
			j++
		case q != 0 && line[j] == q:
			q = 0
		}
	}
	return q != 0
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	if r >= 'A' && r <= 'Z' && !(len(s) > n && s[n] >= 'A' && s[n] <= 'Z') {
		return string(r+'a'-'A') + s[n:]
	}
	return s
}

// posAt maps a rune offset in e.Text (expr-lang's unit) to a position in the job file.
func (e *Expr) posAt(runeOff int) Pos {
	p := e.Pos
	for i, b := 0, 0; b < len(e.Text) && i < runeOff; i++ {
		r, n := utf8.DecodeRuneInString(e.Text[b:])
		if r == '\n' {
			p.Line++
			p.Column = 1
		} else {
			p.Column += n
		}
		p.Offset += n
		b += n
	}
	return p
}

// maxParamsNodes bounds the syntax tree of a params expression.
const maxParamsNodes = 200000

// ownFunctions are the functions mapflow adds to expr-lang's.
var ownFunctions = []string{"exec", "python", "serve"}

func whereKind(kind exprKind) string {
	if kind == kindCombine {
		return "combiner"
	}
	return "func"
}

func wholeWhat(kind exprKind) string {
	if kind == kindCombine {
		return "combiner"
	}
	return "function body"
}

func warmExample(name string, kind exprKind) string {
	switch {
	case kind == kindCombine:
		return `combine python("tasks.py", "add_combiner")`
	case name == "serve":
		return `func f(x) = serve("node", "server.js")`
	}
	return `func add(x, y) = python("tasks.py")`
}

// warmSpec reads the arguments of python(FILE [, FUNCTION]) or serve(PROGRAM, ARGS...): string
// literals only, since the worker process is started before any parameter set is known.
func (c *checker) warmSpec(name string, call *ast.CallNode, kind exprKind, e *Expr) (*Warm, file.Location, string, string) {
	w, detail, problem := c.warmSpec1(name, call, kind, e)
	at := call.Location()
	if strings.HasPrefix(problem, "argument ") {
		var n int
		if _, err := fmt.Sscanf(problem, "argument %d", &n); err == nil && n >= 1 && n <= len(call.Arguments) {
			at = call.Arguments[n-1].Location()
		}
	}
	return w, at, detail, problem
}

func (c *checker) warmSpec1(name string, call *ast.CallNode, kind exprKind, e *Expr) (*Warm, string, string) {
	example := warmExample(name, kind)
	var args []string
	for i, a := range call.Arguments {
		s, ok := a.(*ast.StringNode)
		if !ok {
			return nil, "the worker process starts before any task, so its arguments are written as strings: " + example,
				fmt.Sprintf("argument %d of %s(...) must be a string literal", i+1, name)
		}
		args = append(args, s.Value)
	}
	w := &Warm{Kind: name, Pos: e.posAt(call.Location().From)}
	if name == "serve" {
		if len(args) == 0 || args[0] == "" {
			return nil, "name the program and its arguments: " + example, "serve needs a program to run"
		}
		for i, a := range args {
			if strings.IndexByte(a, 0) >= 0 {
				return nil, "", fmt.Sprintf("argument %d of serve(...) holds a NUL byte", i+1)
			}
		}
		w.Args = args
		c.unshippedArgs = append(c.unshippedArgs, w)
		return w, "", ""
	}
	switch {
	case len(args) == 0:
		return nil, "name the Python file: " + example, "python needs a file: python(FILE [, FUNCTION])"
	case len(args) > 2:
		return nil, "python(FILE [, FUNCTION]) takes the file and the function's name: " + example, fmt.Sprintf("python takes one or two arguments, got %d", len(args))
	case kind == kindCombine && len(args) == 1:
		return nil, "name the combiner's function: " + example, "combine python(...) needs the function's name"
	}
	w.Module = filepath.ToSlash(args[0])
	w.Function = c.job.Func.nameOr()
	if len(args) == 2 {
		w.Function = args[1]
	}
	if !isPythonName(w.Function) {
		return nil, "a Python function's name, like add or evaluate", fmt.Sprintf("%q is not a Python function name", w.Function)
	}
	ship, detail, problem := resolveShip(c.dir, w.Module, c.staged)
	if problem != "" {
		return nil, detail, strings.Replace(problem, "cannot ship", "cannot read python file", 1)
	}
	if !c.staged {
		st, err := os.Stat(ship.Abs)
		switch {
		case err != nil:
			return nil, "looked for " + ship.Abs, fmt.Sprintf("cannot read python file %q: %v", w.Module, unwrapPathError(err))
		case st.IsDir():
			if _, err := os.Stat(filepath.Join(ship.Abs, "__init__.py")); err != nil {
				return nil, "a package directory holds an __init__.py", fmt.Sprintf("python package %q has no __init__.py", w.Module)
			}
		case !strings.HasSuffix(w.Module, ".py"):
			return nil, "name a .py file or a package directory", fmt.Sprintf("python file %q does not end in .py", w.Module)
		}
	}
	if mod := w.ModuleName(); !isPythonName(mod) {
		return nil, "Python imports a module by a name made of letters, digits and _; rename the file",
			fmt.Sprintf("python file %q cannot be imported as a module named %q", w.Module, mod)
	}
	ship.Pos = w.Pos
	c.implicitShips = append(c.implicitShips, ship)
	return w, "", ""
}

// nameOr is the function's name, or "" for no function.
func (f *Func) nameOr() string {
	if f == nil {
		return ""
	}
	return f.Name
}

// isPythonName tells whether s is a Python identifier in ASCII.
func isPythonName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// notEvaluated stands for python(...) and serve(...) in expr-lang's type check; the runtime
// sends such a function's tasks to a worker process instead of evaluating it.
func notEvaluated(args ...any) (any, error) {
	return nil, &evalFail{"RuntimeError", "python(...) and serve(...) run in a worker process, not in an expression"}
}

// Uses tells whether the combiner refers to the variable name ("results" or "tasks"), so
// the runtime builds only what the combiner reads.
func (e *Expr) Uses(name string) bool {
	return e != nil && e.compiled != nil && e.compiled.uses[name]
}

var errNotCompiled = errors.New("expression was not compiled: check the file with lang.Check first")

// Eval evaluates e with the given variables. Its result is JSON-like: nil, bool, int, float64,
// string, []any or map[string]any. A failure is an *EvalError.
func (e *Expr) Eval(vars map[string]any) (any, error) {
	return e.EvalContext(context.Background(), vars)
}

// EvalContext is Eval that stops soon after ctx ends (at the next turn of a loop), failing
// with Interrupted, or TimeoutError when ctx's deadline passed.
func (e *Expr) EvalContext(ctx context.Context, vars map[string]any) (any, error) {
	if e == nil || e.compiled == nil {
		return nil, errNotCompiled
	}
	if ctx.Err() != nil {
		return nil, e.evalError(stopped(ctx))
	}
	m := vm.VM{MemoryBudget: e.compiled.budget}
	var env any
	if vars != nil {
		env = vars
	}
	if e.compiled.counted {
		env = withMem(ctx, vars)
	}
	out, err := m.Run(e.compiled.program, env)
	if err != nil {
		return nil, e.evalError(err)
	}
	if tooLarge(out) {
		return nil, e.newEvalError("MemoryError", errTooLarge, e.Pos)
	}
	return normalize(out), nil
}

// evalError classifies a failure of expr-lang's VM and points it at the job file.
func (e *Expr) evalError(err error) *EvalError {
	pos := e.Pos
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		pos = e.posAt(fe.From)
		msg = fe.Message
	}
	var exc string
	var ef *evalFail
	if errors.As(err, &ef) {
		exc, msg = ef.exception, ef.message
	} else {
		exc, msg = classify(msg)
	}
	return e.newEvalError(exc, msg, pos)
}

func (e *Expr) newEvalError(exc, msg string, pos Pos) *EvalError {
	where := "expression"
	var src []byte
	if e.compiled != nil {
		where, src = e.compiled.where, e.compiled.src
	}
	return &EvalError{Exception: exc, Message: msg, Pos: pos, Traceback: traceback(src, pos, where)}
}

// traceback shows where an evaluation failed: the position, the source line, a caret.
func traceback(src []byte, pos Pos, where string) string {
	head := fmt.Sprintf("%s: in %s", pos, where)
	if pos.Offset < 0 || pos.Offset > len(src) {
		return head
	}
	start := bytes.LastIndexByte(src[:pos.Offset], '\n') + 1
	end := bytes.IndexByte(src[start:], '\n')
	if end < 0 {
		end = len(src)
	} else {
		end += start
	}
	line := strings.TrimRight(string(src[start:end]), "\r")
	var caret strings.Builder
	for _, r := range string(src[start:pos.Offset]) {
		if r == '\t' {
			caret.WriteByte('\t')
		} else {
			caret.WriteByte(' ')
		}
	}
	return head + "\n    " + line + "\n    " + caret.String() + "^"
}

var goTypeNames = map[string]string{
	"<nil>":                   "null",
	"int":                     "int",
	"float64":                 "float",
	"string":                  "string",
	"bool":                    "bool",
	"[]interface {}":          "list",
	"map[string]interface {}": "object",
}

func typeName(goName string) string {
	if n, ok := goTypeNames[goName]; ok {
		return n
	}
	return goName
}

// classify turns an expr-lang runtime message into an exception class and a message worded
// like the language's.
func classify(msg string) (string, string) {
	switch {
	case strings.HasPrefix(msg, "invalid operation: "):
		rest := strings.TrimPrefix(msg, "invalid operation: ")
		if l, op, r, ok := splitBinary(rest); ok {
			return "TypeError", fmt.Sprintf("unsupported operand types for %s: %s and %s", op, typeName(l), typeName(r))
		}
		if op, t, ok := strings.Cut(rest, " "); ok && t != "" {
			return "TypeError", fmt.Sprintf("bad operand type for unary %s: %s", op, typeName(t))
		}
		return "TypeError", msg
	case strings.Contains(msg, "integer divide by zero"):
		return "ZeroDivisionError", "integer modulo by zero"
	case strings.HasPrefix(msg, "cannot fetch "), strings.HasPrefix(msg, "interface conversion"),
		strings.HasPrefix(msg, "invalid argument"), strings.Contains(msg, "mismatched types"):
		return "TypeError", msg
	case strings.HasPrefix(msg, "index out of range"), strings.Contains(msg, "out of range"):
		return "IndexError", msg
	case strings.Contains(msg, "memory budget exceeded"):
		return "MemoryError", msg
	case msg == "":
		return "Error", "evaluation failed"
	}
	return "Error", msg
}

// splitBinary splits `LEFT OP RIGHT` where the types may contain spaces ("[]interface {}").
func splitBinary(s string) (l, op, r string, ok bool) {
	left := ""
	for name := range goTypeNames {
		if strings.HasPrefix(s, name+" ") && len(name) > len(left) {
			left = name
		}
	}
	if left == "" {
		var found bool
		left, _, found = strings.Cut(s, " ")
		if !found {
			return "", "", "", false
		}
	}
	rest := s[len(left)+1:]
	op, r, found := strings.Cut(rest, " ")
	if !found || r == "" || op == "" {
		return "", "", "", false
	}
	return left, op, r, true
}

// divide is expr-lang's `/` with division by zero an error rather than Inf.
func divide(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, &evalFail{"TypeError", "division needs two operands"}
	}
	if isZero(args[1]) && isNumber(args[0]) {
		return nil, &evalFail{"ZeroDivisionError", "division by zero"}
	}
	if !isNumber(args[0]) || !isNumber(args[1]) {
		return nil, &evalFail{"TypeError", fmt.Sprintf("unsupported operand types for /: %s and %s", valueType(args[0]), valueType(args[1]))}
	}
	return exprrt.Divide(args[0], args[1]), nil
}

func isNumber(v any) bool {
	switch v.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return true
	}
	return false
}

func isZero(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return rv.Float() == 0
	}
	return false
}

// valueType names a value's type in the language's words.
func valueType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "int"
	case float32, float64:
		return "float"
	case string:
		return "string"
	case bool:
		return "bool"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// execCommand is exec(program, args...): it builds the Command, turning each argument into
// one string (never split, never given to a shell).
func execCommand(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, &evalFail{"TypeError", "exec needs a program to run"}
	}
	out := make([]string, len(args))
	for i, a := range args {
		s, err := execArg(i+1, a)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	if out[0] == "" {
		return nil, &evalFail{"ValueError", "exec program is an empty string"}
	}
	return Command{Args: out}, nil
}

func execArg(n int, a any) (string, error) {
	switch v := normalize(a).(type) {
	case nil:
		return "", &evalFail{"TypeError", fmt.Sprintf("exec argument %d is null", n)}
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return formatFloat(v), nil
	case float32:
		return formatFloat(float64(v)), nil
	case []any, map[string]any:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", &evalFail{"TypeError", fmt.Sprintf("exec argument %d cannot be written as JSON: %v", n, err)}
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	}
	rv := reflect.ValueOf(a)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), nil
	}
	return "", &evalFail{"TypeError", fmt.Sprintf("exec argument %d is a %s, want a string, number, bool, list or object", n, valueType(a))}
}

// formatFloat writes the shortest decimal that reads back as f, without an exponent:
// 0.1 -> "0.1", 3.0 -> "3".
func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// Caller calls a Func many times; one Caller per goroutine (it reuses a VM).
type Caller struct {
	f  *Func
	vm vm.VM
}

// NewCaller returns a Caller for f.
func (f *Func) NewCaller() *Caller {
	c := &Caller{f: f}
	if f != nil && f.Body != nil && f.Body.compiled != nil {
		c.vm.MemoryBudget = f.Body.compiled.budget
	}
	return c
}

// IsExec tells whether the function's body is an exec(...) call, so that Call returns a
// Command for the runtime to run.
func (f *Func) IsExec() bool {
	return f != nil && f.Body != nil && f.Body.compiled != nil && f.Body.compiled.exec
}

// Call evaluates the function for one parameter set. A parameter missing from params fails
// with a KeyError; keys the function does not take are ignored. The result is a JSON-like
// value, or a Command for an exec(...) body. A failure is an *EvalError.
func (c *Caller) Call(params map[string]any) (any, error) {
	return c.CallContext(context.Background(), params)
}

// CallContext is Call that stops soon after ctx ends, as Expr.EvalContext does.
func (c *Caller) CallContext(ctx context.Context, params map[string]any) (any, error) {
	if c.f == nil || c.f.Body == nil || c.f.Body.compiled == nil {
		return nil, errNotCompiled
	}
	for _, p := range c.f.Params {
		if _, ok := params[p]; !ok {
			return nil, c.f.Body.newEvalError("KeyError", fmt.Sprintf("parameter %q is missing from this parameter set", p), c.f.Pos)
		}
	}
	var env any = params
	if c.f.Body.compiled.counted {
		env = withMem(ctx, params)
	}
	out, err := c.vm.Run(c.f.Body.compiled.program, env)
	if err != nil {
		return nil, c.f.Body.evalError(err)
	}
	if tooLarge(out) {
		return nil, c.f.Body.newEvalError("MemoryError", errTooLarge, c.f.Body.Pos)
	}
	return normalize(out), nil
}
