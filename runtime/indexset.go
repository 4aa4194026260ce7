package runtime

// IndexSet is a set of task indexes at a bit each: a million tasks take 125 kB, where a
// map[int]bool took about 40 MB. The words below the lowest index not in the set are dropped
// as they fill (every index there is in the set), so a set filled roughly in order, as tasks
// finish, holds only the bits from there to its highest index: at a hundred million tasks,
// a few kB instead of 12.5 MB.
type IndexSet struct {
	bits []uint64 // the words from base on
	base int      // words before bits, each full
	n    int
}

const fullWord = ^uint64(0)

// Add puts i in the set and tells whether it was not in it before; a negative i is never in it.
func (s *IndexSet) Add(i int) bool {
	if i < 0 {
		return false
	}
	w := i/64 - s.base
	if w < 0 {
		return false // a dropped word: full
	}
	if w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, w+1-len(s.bits))...)
	}
	bit := uint64(1) << (i % 64)
	if s.bits[w]&bit != 0 {
		return false
	}
	s.bits[w] |= bit
	s.n++
	for len(s.bits) > 0 && s.bits[0] == fullWord {
		s.bits = s.bits[1:] // the array is dropped at the next append that grows it
		s.base++
	}
	return true
}

// Has tells whether i is in the set; a nil set is empty.
func (s *IndexSet) Has(i int) bool {
	if s == nil || i < 0 {
		return false
	}
	w := i/64 - s.base
	return w < 0 || w < len(s.bits) && s.bits[w]&(1<<(i%64)) != 0
}

// Len is how many indexes the set holds.
func (s *IndexSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}
