package runtime

import (
	"math/rand/v2"
	"testing"
)

// IndexSet answers as a map would, whatever the order of the adds.
func TestIndexSetIsASet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s IndexSet
	want := map[int]bool{}
	add := func(i int) {
		if got := s.Add(i); got != (i >= 0 && !want[i]) {
			t.Fatalf("Add(%d) = %v, with %v before", i, got, want[i])
		}
		if i >= 0 {
			want[i] = true
		}
	}
	for i := range 3000 { // in order, then out of order, and again
		if i%5 != 3 {
			add(i)
		}
	}
	for range 20000 {
		add(r.IntN(10000) - 5)
	}
	for i := -3; i < 12000; i++ {
		if s.Has(i) != want[i] {
			t.Fatalf("Has(%d) = %v, want %v", i, s.Has(i), want[i])
		}
	}
	if s.Len() != len(want) {
		t.Errorf("Len = %d, want %d", s.Len(), len(want))
	}
	var none *IndexSet
	if none.Has(0) || none.Len() != 0 {
		t.Error("a nil set is not empty")
	}
}

// A set filled in order, as finished tasks fill it, keeps only the words above its lowest
// missing index.
func TestIndexSetFilledInOrderStaysSmall(t *testing.T) {
	var s IndexSet
	const n = 10_000_000
	for i := range n {
		// Tasks finish a little out of order: each window of 1,000 in reverse.
		s.Add(i/1000*1000 + 999 - i%1000)
	}
	if s.Len() != n || !s.Has(0) || !s.Has(n-1) || s.Has(n) {
		t.Fatalf("Len %d, Has(0) %v, Has(n-1) %v, Has(n) %v", s.Len(), s.Has(0), s.Has(n-1), s.Has(n))
	}
	if c := cap(s.bits); c > 64 {
		t.Errorf("%d words kept for a full set of %d (%d without dropping)", c, n, n/64)
	}
}
