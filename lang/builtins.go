package lang

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/builtin"
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
	"uniq":       listSize(16),
	"sort":       listSize(16),
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

func init() { guardBuiltins() }

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
			n += len(x) + 2
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
