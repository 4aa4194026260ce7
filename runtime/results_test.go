package runtime

import (
	"reflect"
	"testing"
)

func TestResultsKeepEveryKind(t *testing.T) {
	r := newResults(true)
	big := 3*resultChunk + 7
	want := map[int]any{
		0: 1, 999: "s", 1000: -5, 1001: 2.5, 1002: true, 1003: false,
		resultChunk - 1: map[string]any{"a": []any{1.0}}, resultChunk: 1 << 62, big: []any{"x"},
	}
	for i, v := range want {
		r.set(i, v)
	}
	r.set(2*resultChunk+1, nil) // a null in a chunk of its own allocates nothing
	if r.len() != big+1 {
		t.Fatalf("len %d, want %d", r.len(), big+1)
	}
	if r.kinds[2] != nil {
		t.Errorf("a chunk of nulls was allocated")
	}
	n := 0
	r.each(func(i int, v any) {
		if !reflect.DeepEqual(v, want[i]) {
			t.Errorf("result %d: %#v, want %#v", i, v, want[i])
		}
		n++
	})
	if n != big+1 {
		t.Errorf("each gave %d results", n)
	}

	// A task recorded again (a resume) keeps its last result, whatever the kinds.
	r.set(1001, "now a string")
	r.set(big, 7)
	r.set(resultChunk-1, "again")
	if r.at(1001) != "now a string" || r.at(big) != 7 || r.at(resultChunk-1) != "again" {
		t.Errorf("overwritten: %v %v %v", r.at(1001), r.at(big), r.at(resultChunk-1))
	}
}

func TestResultsKeepOnlyTheShownOnesWithoutACombiner(t *testing.T) {
	r := newResults(false)
	for i := range 3 * resultChunk {
		r.set(i, i)
	}
	if len(r.kinds) != 0 || len(r.others) != 0 {
		t.Errorf("kept results past the first %d", ShownResults)
	}
	shown := r.shown()
	if len(shown) != ShownResults || shown[ShownResults-1] != ShownResults-1 || r.len() != 3*resultChunk {
		t.Errorf("shown %d results (last %v), len %d", len(shown), shown[len(shown)-1], r.len())
	}
	r = newResults(false)
	r.grow(3)
	if got := r.shown(); !reflect.DeepEqual(got, []any{nil, nil, nil}) {
		t.Errorf("shown of three tasks without results: %v", got)
	}
}

func TestResultsDrain(t *testing.T) {
	r := newResults(true)
	n := 2*resultChunk + 5
	for i := range n {
		if i%3 == 0 {
			r.set(i, []any{i})
		} else {
			r.set(i, i)
		}
	}
	got := 0
	r.drain(func(i int, v any) {
		want := any(i)
		if i%3 == 0 {
			want = []any{i}
		}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("result %d: %v", i, v)
		}
		got++
	})
	if got != n || r.kinds != nil || r.others != nil || r.at(ShownResults-2) != ShownResults-2 {
		t.Errorf("drained %d of %d; the store keeps %d chunks, %d others; shown last %v",
			got, n, len(r.kinds), len(r.others), r.at(ShownResults-2))
	}
}
