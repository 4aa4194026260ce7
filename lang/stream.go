package lang

import (
	"context"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// streamChunk is how many parameter sets a streamed params expression builds at a time.
const streamChunk = 4096

// rangeStream evaluates a params expression of the form map(A..B, {...}) a chunk of the range
// at a time, so a job of a million tasks never holds a million parameter sets: bounds yields
// [A, B], and body is the same map over __lo..__hi.
type rangeStream struct {
	bounds *vm.Program
	body   *vm.Program
}

// compileRangeStream returns the streamed form of the params expression text whose tree (as
// the name check saw it) has root, or nil when it has another shape or the predicate reads
// #index, which a chunk would number from zero.
func compileRangeStream(text string, root ast.Node, opts func(*nameVisitor) []expr.Option) *rangeStream {
	call, ok := root.(*ast.BuiltinNode)
	if !ok || call.Name != "map" || len(call.Arguments) != 2 {
		return nil
	}
	rng, ok := call.Arguments[0].(*ast.BinaryNode)
	if !ok || rng.Operator != ".." {
		return nil
	}
	if readsNamedPointer(call.Arguments[1]) {
		return nil
	}
	// Both programs come from the same text, so the nodes to replace are found again by
	// their kind and location.
	at := nodeAt{mapLoc: call.Location(), rangeLoc: rng.Location()}
	bounds, err := expr.Compile(text, append(opts(newNameVisitor()), expr.Patch(&boundsPatcher{at}))...)
	if err != nil {
		return nil
	}
	body, err := expr.Compile(text, append(opts(newNameVisitor()), expr.Patch(&chunkPatcher{at}))...)
	if err != nil {
		return nil
	}
	return &rangeStream{bounds: bounds, body: body}
}

func newNameVisitor() *nameVisitor {
	return &nameVisitor{callees: map[*ast.IdentifierNode]bool{}, declared: map[string]bool{}}
}

// readsNamedPointer tells whether n uses a pointer like #index or #acc.
func readsNamedPointer(n ast.Node) bool {
	f := &pointerFinder{}
	ast.Walk(&n, f)
	return f.found
}

type pointerFinder struct{ found bool }

func (f *pointerFinder) Visit(node *ast.Node) {
	if p, ok := (*node).(*ast.PointerNode); ok && p.Name != "" {
		f.found = true
	}
}

// nodeAt names the root map call and its range by their locations in the text.
type nodeAt struct{ mapLoc, rangeLoc file.Location }

func (at nodeAt) isMap(n ast.Node) (*ast.BuiltinNode, bool) {
	b, ok := n.(*ast.BuiltinNode)
	return b, ok && b.Name == "map" && b.Location() == at.mapLoc && len(b.Arguments) == 2
}

func (at nodeAt) isRange(n ast.Node) (*ast.BinaryNode, bool) {
	b, ok := n.(*ast.BinaryNode)
	return b, ok && b.Operator == ".." && b.Location() == at.rangeLoc
}

// boundsPatcher turns map(A..B, p) into [A, B].
type boundsPatcher struct{ at nodeAt }

func (p *boundsPatcher) Visit(node *ast.Node) {
	call, ok := p.at.isMap(*node)
	if !ok {
		return
	}
	rng, ok := p.at.isRange(call.Arguments[0])
	if !ok {
		return
	}
	arr := &ast.ArrayNode{Nodes: []ast.Node{rng.Left, rng.Right}}
	arr.SetLocation(call.Location())
	ast.Patch(node, arr)
}

// chunkPatcher turns the range A..B into __lo..__hi.
type chunkPatcher struct{ at nodeAt }

func (p *chunkPatcher) Visit(node *ast.Node) {
	rng, ok := p.at.isRange(*node)
	if !ok {
		return
	}
	lo := &ast.IdentifierNode{Value: "__lo"}
	hi := &ast.IdentifierNode{Value: "__hi"}
	lo.SetLocation(rng.Left.Location())
	hi.SetLocation(rng.Right.Location())
	ast.Patch(node, &ast.BinaryNode{Operator: "..", Left: lo, Right: hi})
}

// streamBounds evaluates the range of a streamed expression; ok is false when its bounds are
// not both integers.
func (e *Expr) streamBounds(s *rangeStream) (lo, hi int, ok bool) {
	m := vm.VM{MemoryBudget: e.compiled.budget}
	out, err := m.Run(s.bounds, nil)
	if err != nil {
		return 0, 0, false
	}
	b, _ := normalize(out).([]any)
	if len(b) != 2 {
		return 0, 0, false
	}
	lo, ok1 := b[0].(int)
	hi, ok2 := b[1].(int)
	return lo, hi, ok1 && ok2
}

// eachStreamed calls fn with every element of the streamed expression e, in order, with its
// index in the whole list. ok is false when the bounds are not both integers: the caller then
// evaluates e whole, which reports the problem as expr-lang would.
func (e *Expr) eachStreamed(ctx context.Context, s *rangeStream, fn func(int, any) error) (ok bool, err error) {
	lo, hi, ok := e.streamBounds(s)
	if !ok {
		return false, nil
	}
	if lo > hi {
		return true, nil
	}
	index := 0
	env := map[string]any{}
	for start := lo; ; {
		// The distance to hi as unsigned: hi - start overflows an int for a range wider than
		// MaxInt, and start + streamChunk near MaxInt.
		span := uint64(hi) - uint64(start)
		end := hi
		if span >= streamChunk {
			end = start + streamChunk - 1
		}
		env["__lo"], env["__hi"] = start, end
		if ctx.Err() != nil {
			return true, e.evalError(stopped(ctx))
		}
		if e.compiled.counted {
			env[memVar] = &evalState{ctx: ctx, done: ctx.Done()}
		}
		m := vm.VM{MemoryBudget: e.compiled.budget}
		out, err := m.Run(s.body, env)
		if err != nil {
			return true, e.evalError(err)
		}
		if tooLarge(out) {
			return true, e.newEvalError("MemoryError", errTooLarge, e.Pos)
		}
		list, _ := normalize(out).([]any)
		for _, el := range list {
			if err := fn(index, el); err != nil {
				return true, err
			}
			index++
		}
		if end == hi {
			break
		}
		start = end + 1
	}
	return true, nil
}
