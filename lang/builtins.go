package lang

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/expr-lang/expr/builtin"
	exprrt "github.com/expr-lang/expr/vm/runtime"
)

// expr-lang's builtins that build strings and lists count nothing against the VM's memory
// budget, or count after building: repeat(repeat("ab", 100000), 100000) asked for 20 GB, and
// reduce(1..30, string([#acc, #acc]), "ab") doubled a string until the driver died. Each of
// them is wrapped once, for every expression: an estimate of what the call would build is
// refused past maxString before it is built, and what it built is counted against the VM's
// budget (in units of bytesPerUnit), so that a million calls in a map add up.

// bytesPerUnit is how many bytes of a builtin's result count as one unit of the VM's budget,
// whose unit is roughly one allocated element.
const bytesPerUnit = 16

// sizers estimate, before the call, the bytes the builtin name would build from its arguments.
var sizers = map[string]func(args []any) int{
	"repeat": func(args []any) int {
		s, _ := arg[string](args, 0)
		n, _ := arg[int](args, 1)
		return mul(len(s), max(n, 0))
	},
	"replace": func(args []any) int {
		s, _ := arg[string](args, 0)
		old, _ := arg[string](args, 1)
		repl, _ := arg[string](args, 2)
		grow := len(repl) - len(old)
		if grow <= 0 {
			return len(s)
		}
		n := strings.Count(s, old)
		if limit, ok := arg[int](args, 3); ok && limit >= 0 && limit < n {
			n = limit
		}
		return len(s) + mul(n, grow)
	},
	"join": func(args []any) int {
		glue, _ := arg[string](args, 1)
		n := 0
		switch list := args[0].(type) {
		case []any:
			n = mul(len(glue), len(list))
			for _, e := range list {
				if s, ok := e.(string); ok {
					n += len(s)
				}
			}
		case []string:
			n = mul(len(glue), len(list))
			for _, s := range list {
				n += len(s)
			}
		}
		return n
	},
	"split":      splitSize,
	"splitAfter": splitSize,
	"upper":      firstLen(3), // a few runes grow in upper case
	"lower":      firstLen(3),
	"toBase64":   firstLen(2),
	"fromBase64": firstLen(1),
	"fromJSON":   firstLen(12), // "[0,0,…]": two bytes per element of 24
	"string":     valueSize,
	"toJSON":     valueSize,
	"toPairs":    mapSize(96),
	"keys":       mapSize(16),
	"values":     mapSize(16),
	"fromPairs":  listSize(64),
	"sort":       listSize(16),
	"concat":     argsSize(16),
	// These walk nested lists whole: a list shared many times over (reduce(1..40, [#acc,
	// #acc], [1])) would take them 2^40 steps. Four bytes a value bounds them to 16 million.
	"flatten": leafSize(16),
	"max":     leafSize(4),
	"min":     leafSize(4),
	"mean":    leafSize(4),
	"median":  leafSize(4),
}

// argsSize estimates a result as k bytes per element of every list argument.
func argsSize(k int) func([]any) int {
	return func(args []any) int {
		n := 0
		for _, a := range args {
			if l, ok := a.([]any); ok {
				n += len(l)
			} else if rv := reflect.ValueOf(a); rv.Kind() == reflect.Slice {
				n += rv.Len()
			}
		}
		return mul(n, k)
	}
}

// leafSize estimates a result as k bytes per value inside the arguments' lists, counting a
// shared list each time it is reached, and no further than the estimate passes maxString.
func leafSize(k int) func([]any) int {
	return func(args []any) int {
		limit := maxString/k + 1
		n := 0
		stack := [][]any{args}
		for len(stack) > 0 && n <= limit {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, e := range top {
				switch x := e.(type) {
				case []any:
					stack = append(stack, x)
				default:
					if rv := reflect.ValueOf(e); rv.Kind() == reflect.Slice {
						n += rv.Len()
					} else {
						n++
					}
				}
				if n > limit || len(stack) > maxDepth {
					return maxString + 1
				}
			}
		}
		return mul(n, k)
	}
}

// guardBuiltins wraps each builtin that has a sizer.
func guardBuiltins() {
	for name, size := range sizers {
		id, ok := builtin.Index[name]
		if !ok {
			continue
		}
		f := builtin.Builtins[id]
		call := f.Safe
		switch {
		case call != nil:
		case f.Fast != nil:
			fast := f.Fast
			call = func(args ...any) (any, uint, error) { return fast(args[0]), 0, nil }
		case f.Func != nil:
			fn := f.Func
			call = func(args ...any) (any, uint, error) {
				out, err := fn(args...)
				return out, 0, err
			}
		default:
			continue
		}
		f.Fast, f.Func = nil, nil // expr-lang's compiler prefers Fast, then Safe
		f.Safe = func(args ...any) (any, uint, error) {
			if len(args) > 0 {
				if n := size(args); n == tooDeep {
					return nil, 0, &evalFail{"MemoryError", fmt.Sprintf("%s: the value nests deeper than %d levels", name, maxDepth)}
				} else if n > maxString {
					return nil, 0, &evalFail{"MemoryError", fmt.Sprintf("%s would build about %d bytes, more than %d MiB", name, n, maxString>>20)}
				}
			}
			out, counted, err := call(args...)
			if err != nil {
				return nil, 0, err
			}
			n := resultSize(out)
			if s, ok := out.(string); ok && len(s) > maxString {
				return nil, 0, &evalFail{"MemoryError", fmt.Sprintf("%s built a string of %d bytes, more than %d MiB", name, len(s), maxString>>20)}
			}
			return out, max(counted, uint(n/bytesPerUnit)), nil
		}
	}
}

func init() {
	guardBuiltins()
	if id, ok := builtin.Index["uniq"]; ok {
		builtin.Builtins[id].Safe = uniq
		builtin.Builtins[id].Func, builtin.Builtins[id].Fast = nil, nil
	}
}

// maxUniqPairs bounds uniq over values that cannot be hashed, which compares every pair.
const maxUniqPairs = 1 << 26

// uniq is expr-lang's uniq (the first of equal values, in order; 1 and 1.0 are equal) in
// linear time for numbers, strings, bools and null, where expr-lang's compares every pair:
// uniq(1..300000) took minutes.
func uniq(args ...any) (any, uint, error) {
	if len(args) != 1 {
		return nil, 0, fmt.Errorf("invalid number of arguments (expected 1, got %d)", len(args))
	}
	rv := reflect.ValueOf(args[0])
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, 0, fmt.Errorf("cannot uniq %s", rv.Kind())
	}
	n := rv.Len()
	out := make([]any, 0, n)
	seen := make(map[any]bool, n)
	var others []any // values that cannot be map keys
	for i := range n {
		v := rv.Index(i).Interface()
		key, hashable := uniqKey(v)
		if hashable {
			if !seen[key] {
				seen[key] = true
				out = append(out, v)
			}
			continue
		}
		if len(others) > 0 && len(others)*n > maxUniqPairs {
			return nil, 0, &evalFail{"MemoryError", fmt.Sprintf("uniq of %d lists or objects would compare too many pairs", n)}
		}
		dup := false
		for _, o := range others {
			if eq, err := equal(v, o); err != nil {
				return nil, 0, err
			} else if eq {
				dup = true
				break
			}
		}
		if !dup {
			others = append(others, v)
			out = append(out, v)
		}
	}
	return out, uint(len(out)), nil
}

// uniqKey is v as a map key under expr-lang's equality (an int and an equal float are one).
func uniqKey(v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool, string:
		return v, true
	case int:
		return float64(x), float64(x) == float64(int(float64(x)))
	case float64:
		return x, x == x // NaN is not equal to itself
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Float32:
		return rv.Float(), true
	}
	return nil, false
}

// arg returns args[i] as a T, when there is one.
func arg[T any](args []any, i int) (T, bool) {
	var zero T
	if i >= len(args) {
		return zero, false
	}
	v, ok := args[i].(T)
	return v, ok
}

// firstLen estimates a result as k times the length of the string in the first argument.
func firstLen(k int) func([]any) int {
	return func(args []any) int {
		s, _ := arg[string](args, 0)
		return mul(k, len(s))
	}
}

// splitSize is what split(s, sep[, n]) builds: a string header for each piece.
func splitSize(args []any) int {
	s, _ := arg[string](args, 0)
	sep, _ := arg[string](args, 1)
	n := utf8.RuneCountInString(s)
	if sep != "" {
		n = strings.Count(s, sep)
	}
	n++
	if limit, ok := arg[int](args, 2); ok && limit >= 0 && limit < n {
		n = limit
	}
	return mul(n, bytesPerUnit)
}

// mul is a*b for a, b >= 0, or math.MaxInt when that overflows.
func mul(a, b int) int {
	if a != 0 && b > math.MaxInt/a {
		return math.MaxInt
	}
	return a * b
}

// mapSize estimates a result as k bytes per key of the map in the first argument.
func mapSize(k int) func([]any) int {
	return func(args []any) int {
		if m, ok := args[0].(map[string]any); ok {
			return mul(k, len(m))
		}
		return 0
	}
}

// listSize estimates a result as k bytes per element of the list in the first argument.
func listSize(k int) func([]any) int {
	return func(args []any) int {
		if l, ok := args[0].([]any); ok {
			return mul(k, len(l))
		}
		return 0
	}
}

// jsonLen is the bytes of s as a JSON string: encoding/json writes <, >, &, control
// characters as six bytes, " and \\ as two.
func jsonLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			n += 5
		case c == '"' || c == '\\':
			n++
		}
	}
	return n
}

// tooDeep is what valueSize says of a value nested deeper than maxDepth.
const tooDeep = -1

// valueSize estimates the text string(v) and toJSON(v) print for the first argument, walking
// it only until the estimate passes maxString (without recursion: a list may nest a million
// deep).
func valueSize(args []any) int {
	n := 0
	var lists [][]any // the elements of each open list or map still to walk
	visit := func(v any) {
		switch x := v.(type) {
		case string:
			n += jsonLen(x)
		case []any:
			n += 2 + len(x)
			lists = append(lists, x)
		case map[string]any:
			n += 2
			vals := make([]any, 0, len(x))
			for k, e := range x {
				n += len(k) + 4
				vals = append(vals, e)
			}
			lists = append(lists, vals)
		default:
			n += 8
		}
	}
	visit(args[0])
	for len(lists) > 0 && n <= maxString {
		if len(lists) > maxDepth {
			return tooDeep
		}
		top := &lists[len(lists)-1]
		if len(*top) == 0 {
			lists = lists[:len(lists)-1]
			continue
		}
		e := (*top)[0]
		*top = (*top)[1:]
		visit(e)
	}
	return n
}

// resultSize is the bytes a builtin's result takes, counted at its top level.
func resultSize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []any:
		return 16 * len(x)
	case []string:
		return 16 * len(x)
	case map[string]any:
		return 48 * len(x)
	}
	return 0
}

// The operators the job language makes builtins of (see nameVisitor), so that what they
// build counts against the VM's budget, as a builtin's result does.
func init() {
	anyResult := func([]reflect.Type) (reflect.Type, error) { return reflect.TypeFor[any](), nil }
	boolResult := func([]reflect.Type) (reflect.Type, error) { return reflect.TypeFor[bool](), nil }
	register := func(name string, validate func([]reflect.Type) (reflect.Type, error), safe func(args ...any) (any, uint, error)) {
		builtin.Index[name] = len(builtin.Builtins)
		builtin.Builtins = append(builtin.Builtins, &builtin.Function{Name: name, Safe: safe, Validate: validate})
	}
	register("__add", anyResult, add)
	register("__tick", anyResult, tick)
	// The evaluation's state reaches __tick as the pointer it is: builtins' arguments are
	// dereferenced unless Deref says not to.
	builtin.Builtins[builtin.Index["__tick"]].Deref = func(i int, _ reflect.Type) bool { return i == 0 }
	register("__eq", boolResult, func(args ...any) (any, uint, error) {
		eq, err := equal(args[0], args[1])
		return eq, 0, err
	})
	register("__ne", boolResult, func(args ...any) (any, uint, error) {
		eq, err := equal(args[0], args[1])
		return !eq, 0, err
	})
	register("__matches", boolResult, matches)
	register("__sized", anyResult, func(args ...any) (any, uint, error) {
		if s, ok := args[0].(string); ok && len(s) > maxString {
			return nil, 0, &evalFail{"MemoryError", fmt.Sprintf("a method built a string of %d bytes, more than %d MiB", len(s), maxString>>20)}
		}
		return args[0], uint(resultSize(args[0]) / bytesPerUnit), nil
	})
}

// add is + with a bound on the strings it makes, which count against the budget.
func add(args ...any) (any, uint, error) {
	if a, ok := args[0].(string); ok {
		if b, ok := args[1].(string); ok {
			n := len(a) + len(b)
			if n > maxString {
				return nil, 0, &evalFail{"MemoryError", fmt.Sprintf("+ would build a string of %d bytes, more than %d MiB", n, maxString>>20)}
			}
			return a + b, uint(n / bytesPerUnit), nil
		}
	}
	return exprrt.Add(args[0], args[1]), 0, nil
}

// equal is expr-lang's ==, refusing lists and objects nested deeper than maxDepth, which its
// recursion would follow past the stack's end.
func equal(a, b any) (bool, error) {
	switch a.(type) {
	case nil, bool, int, float64, string:
		return exprrt.Equal(a, b), nil
	}
	if depth(a) > maxDepth || depth(b) > maxDepth {
		return false, &evalFail{"MemoryError", fmt.Sprintf("== compares values nested deeper than %d levels", maxDepth)}
	}
	return exprrt.Equal(a, b), nil
}

// depth is how deep lists and objects nest in v along the first nested element of each
// (a chain such as reduce(r, [#acc], 0) builds), counted no further than maxDepth + 1.
func depth(v any) int {
	d := 0
	for ; d <= maxDepth; d++ {
		var next any
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if nested(e) {
					next = e
					break
				}
			}
		case map[string]any:
			for _, e := range x {
				if nested(e) {
					next = e
					break
				}
			}
		default:
			return d
		}
		if next == nil {
			return d + 1
		}
		v = next
	}
	return d
}

func nested(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return true
	}
	return false
}

// maxMatchWork bounds a regexp match: Go's regexp costs the text's length times the pattern's
// program size, which one `matches` would otherwise spend for minutes without a turn to stop
// at.
const maxMatchWork = 1 << 28

var (
	regexpMu    sync.Mutex
	regexpCache = map[string]*sizedRegexp{}
)

// sizedRegexp is a compiled pattern and the size of its program: a match costs about the
// text's length times that.
type sizedRegexp struct {
	*regexp.Regexp
	size int
}

func compileRegexp(pattern string) (*sizedRegexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return nil, err
	}
	return &sizedRegexp{re, len(prog.Inst)}, nil
}

// matches is expr-lang's matches operator, bounded by maxMatchWork.
func matches(args ...any) (any, uint, error) {
	s, ok1 := args[0].(string)
	pattern, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, 0, &evalFail{"TypeError", fmt.Sprintf("matches needs two strings, got %s and %s", valueType(args[0]), valueType(args[1]))}
	}
	regexpMu.Lock()
	re, ok := regexpCache[pattern]
	regexpMu.Unlock()
	if !ok {
		var err error
		if re, err = compileRegexp(pattern); err != nil {
			return nil, 0, &evalFail{"ValueError", err.Error()}
		}
		regexpMu.Lock()
		if len(regexpCache) >= 256 {
			clear(regexpCache)
		}
		regexpCache[pattern] = re
		regexpMu.Unlock()
	}
	if len(s) > 0 && re.size > maxMatchWork/len(s) {
		return nil, 0, &evalFail{"MemoryError", fmt.Sprintf("matches of a pattern of %d instructions over %d bytes would take too long", re.size, len(s))}
	}
	return re.MatchString(s), 0, nil
}
