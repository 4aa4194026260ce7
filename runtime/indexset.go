package runtime

// IndexSet is a set of task indexes at a bit each: a million tasks take 125 kB, where a
// map[int]bool took about 40 MB.
type IndexSet struct {
	bits []uint64
	n    int
}

// Add puts i in the set and tells whether it was not in it before; a negative i is never in it.
func (s *IndexSet) Add(i int) bool {
	if i < 0 {
		return false
	}
	w := i / 64
	if w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, w+1-len(s.bits))...)
	}
	bit := uint64(1) << (i % 64)
	if s.bits[w]&bit != 0 {
		return false
	}
	s.bits[w] |= bit
	s.n++
	return true
}

// Has tells whether i is in the set; a nil set is empty.
func (s *IndexSet) Has(i int) bool {
	return s != nil && i >= 0 && i/64 < len(s.bits) && s.bits[i/64]&(1<<(i%64)) != 0
}

// Len is how many indexes the set holds.
func (s *IndexSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}
