package runtime

import "math"

// ShownResults is how many map results a Report holds whatever the job: the first ones, which
// `mapflow run` prints. The rest are in the catalog; the driver keeps them all only for a
// combiner that reads them.
const ShownResults = 1000

// resultChunk is how many results one chunk of a results store holds.
const resultChunk = 1 << 16

// Kinds of a stored result.
const (
	kindNone  uint8 = iota // no result: failed, not run, or null
	kindInt                // vals holds the int
	kindFloat              // vals holds the float64's bits
	kindFalse
	kindTrue
	kindOther // vals holds its position in others
)

// results holds a run's map results by task index. The first ShownResults are kept as they
// are; past them, results are kept only when all is set (a combiner reads them), and then
// compactly: nine bytes a result for null, booleans, integers and floats, in chunks that are
// allocated as indices reach them, so a million integer results take 9 MB and no copy is made
// as they grow. Other values (strings, lists, objects) are kept as they are, in others.
type results struct {
	all    bool
	first  []any
	kinds  [][]uint8
	vals   [][]uint64
	others []any
	n      int // one past the highest index given
}

func newResults(all bool) *results { return &results{all: all} }

// set records task i's result; nil records none.
func (r *results) set(i int, v any) {
	if i >= r.n {
		r.n = i + 1
	}
	if i < ShownResults {
		if r.first == nil {
			r.first = make([]any, ShownResults)
		}
		r.first[i] = v
		return
	}
	if !r.keeps(i) {
		return
	}
	c, j := i/resultChunk, i%resultChunk
	for c >= len(r.kinds) {
		r.kinds = append(r.kinds, nil)
		r.vals = append(r.vals, nil)
	}
	if r.kinds[c] == nil {
		if v == nil {
			return
		}
		r.kinds[c] = make([]uint8, resultChunk)
		r.vals[c] = make([]uint64, resultChunk)
	}
	kind, bits := kindNone, uint64(0)
	switch v := v.(type) {
	case nil:
	case int:
		kind, bits = kindInt, uint64(v)
	case float64:
		kind, bits = kindFloat, math.Float64bits(v)
	case bool:
		kind = kindFalse
		if v {
			kind = kindTrue
		}
	default:
		if r.kinds[c][j] == kindOther {
			r.others[r.vals[c][j]] = v // a task recorded twice (resume): the last result
			return
		}
		kind, bits = kindOther, uint64(len(r.others))
		r.others = append(r.others, v)
	}
	if r.kinds[c][j] == kindOther {
		r.others[r.vals[c][j]] = nil
	}
	r.kinds[c][j], r.vals[c][j] = kind, bits
}

// keeps tells whether the store keeps task i's result.
func (r *results) keeps(i int) bool { return i < ShownResults || r.all }

// grow makes n the number of results, when it is more than the highest index given.
func (r *results) grow(n int) { r.n = max(r.n, n) }

// len is the number of tasks the store has results (or nils) for.
func (r *results) len() int { return r.n }

// shown is the first results, up to ShownResults, with a nil for each task without one.
func (r *results) shown() []any {
	n := min(r.n, ShownResults)
	out := make([]any, n)
	copy(out, r.first)
	return out
}

// at is task i's result, or nil; past ShownResults it is nil unless the store keeps all.
func (r *results) at(i int) any {
	if i < ShownResults {
		if r.first == nil {
			return nil
		}
		return r.first[i]
	}
	c, j := i/resultChunk, i%resultChunk
	if c >= len(r.kinds) || r.kinds[c] == nil {
		return nil
	}
	bits := r.vals[c][j]
	switch r.kinds[c][j] {
	case kindInt:
		return int(bits)
	case kindFloat:
		return math.Float64frombits(bits)
	case kindFalse:
		return false
	case kindTrue:
		return true
	case kindOther:
		return r.others[bits]
	}
	return nil
}

// each calls fn with every task's index and result in index order.
func (r *results) each(fn func(i int, v any)) {
	for i := range r.n {
		fn(i, r.at(i))
	}
}

// drain is each that lets go of the results past the shown ones as it hands them out, so that
// the combiner's copy of a million results does not sit beside the store's: the store holds
// only the shown results afterwards.
func (r *results) drain(fn func(i int, v any)) {
	for i := range r.n {
		v := r.at(i)
		if c, j := i/resultChunk, i%resultChunk; i >= ShownResults && c < len(r.kinds) && r.kinds[c] != nil {
			if r.kinds[c][j] == kindOther {
				r.others[r.vals[c][j]] = nil
			}
			if j == resultChunk-1 {
				r.kinds[c], r.vals[c] = nil, nil
			}
		}
		fn(i, v)
	}
	r.kinds, r.vals, r.others = nil, nil, nil
}
