package lang

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParamsErrors(t *testing.T) {
	files := map[string]string{
		"bad.jsonl":  "{\"x\": 1}\n\n{\"x\": 2,\n",
		"list.jsonl": "{\"x\": 1}\n[1, 2]\n",
		"two.jsonl":  "{\"x\": 1} {\"x\": 2}\n",
		"fields.csv": "x,y\n1,2\n1,2,3\n",
		"quote.csv":  "x,y\n1,\"2\n",
		"empty.csv":  "",
		"header.csv": "x,x\n1,2\n",
	}
	tests := []struct {
		name, params string
		want         string // substring of the error, after the job's directory
		n            int    // sets before the error
	}{
		{"not a list", "params 3", "job.mf:2:1: params must be a list of objects, got int", 0},
		{"element not object", "params [{x: 1}, {x: 2}, 5]", "job.mf:2:1: params element 3 is an int, want an object like {x: 1}", 2},
		{"element null", "params [null]", "params element 1 is null", 0},
		{"runtime error", "params [{x: 1 / 0}]", "job.mf:2:15: ZeroDivisionError: division by zero", 0},
		{"grid axis not list", "params grid { x: 3 }", `job.mf:2:15: grid axis "x" must be a list, got int`, 0},
		{"jsonl bad line", `params file "bad.jsonl"`, "bad.jsonl:3: bad JSON", 1},
		{"jsonl not object", `params file "list.jsonl"`, "list.jsonl:2: line is a list, want a JSON object", 1},
		{"jsonl two values", `params file "two.jsonl"`, "two.jsonl:1: more than one JSON value", 0},
		{"csv fields", `params file "fields.csv"`, "fields.csv:3: row has 3 fields, the header has 2", 1},
		{"csv quote", `params file "quote.csv"`, "quote.csv:2: extraneous or missing \" in quoted-field", 0},
		{"csv header", `params file "header.csv"`, `header.csv:1: header names column "x" twice`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustLoad(t, "func f(x) = x\n"+tt.params+"\n", files)
			n := 0
			err := j.Params.Each(func(int, map[string]any) error { n++; return nil })
			if err == nil || !strings.Contains(err.Error(), tt.want) || n != tt.n {
				t.Errorf("after %d sets: %v\nwant %d sets and %q", n, err, tt.n, tt.want)
			}
		})
	}
	j := mustLoad(t, "func f(x) = x\nparams file \"empty.csv\"\n", files)
	if got := sets(t, j); len(got) != 0 {
		t.Errorf("empty csv gave %v", got)
	}
}

func TestParamsStopAndOrder(t *testing.T) {
	stop := errors.New("stop")
	j := mustLoad(t, "func f(a, b, c) = a\nparams grid { a: [1, 2], b: ['x', 'y', 'z'], c: [true] }\n", nil)
	var got []string
	err := j.Params.Each(func(i int, set map[string]any) error {
		got = append(got, fmt.Sprint(set["a"], set["b"], set["c"]))
		if i == 4 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("err %v, want the callback's", err)
	}
	want := []string{"1xtrue", "1ytrue", "1ztrue", "2xtrue", "2ytrue"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	j = mustLoad(t, "func f(a, b) = a\nparams grid { a: [1, 2], b: [] }\n", nil)
	if got := sets(t, j); len(got) != 0 {
		t.Errorf("grid with an empty axis gave %v", got)
	}
}

func TestParamsLongLine(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 5 MiB file")
	}
	long := strings.Repeat("a", 5<<20)
	j := mustLoad(t, "func f(x) = len(x)\nparams file \"long.jsonl\"\n", map[string]string{
		"long.jsonl": `{"x": "` + long + "\"}\n{\"x\": \"b\"}",
	})
	got := sets(t, j)
	if len(got) != 2 || got[0]["x"] != long || got[1]["x"] != "b" {
		t.Errorf("got %d sets", len(got))
	}
}

func TestBigListParams(t *testing.T) {
	j := mustLoad(t, "func f(x, y) = x + y\nparams map(1..100000, ({x: #, y: # * 2}))\n", nil)
	n := 0
	c := j.Func.NewCaller()
	err := j.Params.Each(func(i int, set map[string]any) error {
		v, err := c.Call(set)
		if err != nil {
			return err
		}
		if v != (i+1)*3 {
			return fmt.Errorf("set %d: got %v", i, v)
		}
		n++
		return nil
	})
	if err != nil || n != 100000 {
		t.Errorf("%d sets, %v", n, err)
	}
}

func TestLint(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.jsonl"), []byte("{\"x\": 1, \"y\": 2}\n{\"x\": 1, \"z\": 3}\n{\"x\": 1, \"z\": 3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, src string
		want      []string
	}{
		{"list", "func f(x, y) = x + y\nparams [{x: 1, y: 2, w: 1}, {x: 1}, {x: 2, w: 2}]\n", []string{
			`job.mf:2:1: warning: parameter sets have key "w", which func f does not take`,
			`job.mf:2:1: warning: a parameter set lacks "y" (this set will fail with KeyError)`,
		}},
		{"file", "func f(x, y) = x + y\nparams file \"s.jsonl\"\n", []string{
			`s.jsonl:2: warning: parameter sets have key "z", which func f does not take`,
			`s.jsonl:2: warning: a parameter set lacks "y" (this set will fail with KeyError)`,
		}},
		{"clean", "func f(x, y) = x + y\nparams [{x: 1, y: 2}]\n", nil},
		{"broken source", "func f(x, y) = x + y\nparams [1]\n", []string{"job.mf:2:1: params element 1 is an int"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "job.mf")
			if err := os.WriteFile(p, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			j, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			ds := j.Lint()
			if len(ds) != len(tt.want) {
				t.Fatalf("got %d diagnostics, want %d:\n%v", len(ds), len(tt.want), ds)
			}
			for i, d := range ds {
				if !strings.Contains(d.Error(), tt.want[i]) {
					t.Errorf("diagnostic %d:\n  %s\nwant\n  %s", i, d.Error(), tt.want[i])
				}
			}
		})
	}
}

func TestLongLiteralList(t *testing.T) {
	var b strings.Builder
	b.WriteString("func f(x, y) = x + y\nparams [\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "  {x: %d, y: %d},\n", i, i)
	}
	b.WriteString("]\n")
	j := mustLoad(t, b.String(), nil)
	if n := len(sets(t, j)); n != 5000 {
		t.Errorf("got %d sets", n)
	}
	_, err := load(t, "func f(x) = x\nparams "+strings.Repeat("[", 300)+strings.Repeat("]", 300)+"\n", nil)
	if err == nil || !strings.Contains(err.Error(), "brackets nested too deeply") {
		t.Errorf("deep nesting: %v", err)
	}
}

// A params expression map(A..B, ...) is evaluated a chunk at a time; whatever its shape, the
// sets, their order and their errors are those of evaluating it whole.
func TestStreamedParamsMatchWhole(t *testing.T) {
	n := streamChunk*2 + 7
	tests := []struct{ name, params, err string }{
		{"simple", fmt.Sprintf("map(1..%d, ({x: #, y: # * 2}))", n), ""},
		{"negative bounds", "map(-5000..-1, ({x: #}))", ""},
		{"computed bounds", fmt.Sprintf("map(10 - 9..%d * 2, ({x: # %% 7}))", n), ""},
		{"empty", "map(5..1, ({x: #}))", ""},
		{"single", "map(3..3, ({x: #}))", ""},
		{"index", fmt.Sprintf("map(1..%d, ({x: #index}))", n), ""},
		{"nested", "map(1..3, ({x: map(1..2, # * 10)}))", ""},
		{"bad element", fmt.Sprintf("map(1..%d, # == %d ? 1 : ({x: #}))", n, n-3), fmt.Sprintf("params element %d is an int", n-3)},
		{"runtime error", fmt.Sprintf("map(1..%d, ({x: # == %d ? 1 / 0 : #}))", n, n-1), "ZeroDivisionError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustLoad(t, "func f(x) = x\nparams "+tt.params+"\n", nil)
			var streamed []map[string]any
			errStreamed := j.Params.Each(func(_ int, set map[string]any) error {
				streamed = append(streamed, set)
				return nil
			})
			j.Params.Expr.compiled.stream = nil
			var whole []map[string]any
			errWhole := j.Params.Each(func(_ int, set map[string]any) error {
				whole = append(whole, set)
				return nil
			})
			if errWhole != nil {
				// Like a params file, a stream hands out the sets before the failing one.
				for i, set := range streamed {
					if set["x"] != i+1 {
						t.Fatalf("streamed set %d is %v before the error", i, set)
					}
				}
				streamed, whole = nil, nil
			}
			if diff := cmp.Diff(whole, streamed); diff != "" {
				t.Errorf("streamed sets differ from whole (-whole +streamed):\n%s", diff)
			}
			if fmt.Sprint(errWhole) != fmt.Sprint(errStreamed) {
				t.Errorf("errors differ: whole %v, streamed %v", errWhole, errStreamed)
			}
			if tt.err == "" && errWhole != nil || tt.err != "" && (errWhole == nil || !strings.Contains(errWhole.Error(), tt.err)) {
				t.Errorf("error %v, want %q", errWhole, tt.err)
			}
		})
	}
}

// Streamed ranges at the ends of int: no set is made twice, none wraps around, and a range
// wider than an int can count is not cut short.
func TestStreamedParamsAtIntLimits(t *testing.T) {
	for _, tt := range []struct {
		params     string
		count      int
		countKnown bool
		first      int
	}{
		{"map(9223372036854775807 - 5000..9223372036854775807, ({x: #}))", 5001, true, math.MaxInt - 5000},
		{"map(9223372036854775805..9223372036854775807, ({x: #}))", 3, true, math.MaxInt - 2},
		{"map(-9223372036854775807 - 1..-9223372036854775807 + 4200, ({x: #}))", 4202, true, math.MinInt},
		{"map(-9000000000000000000..9000000000000000000, ({x: #}))", 0, false, -9000000000000000000},
	} {
		j := mustLoad(t, "func f(x) = x\nparams "+tt.params+"\n", nil)
		n, ok := j.Params.Count()
		if n != tt.count || ok != tt.countKnown {
			t.Errorf("%s: Count() = %d, %v; want %d, %v", tt.params, n, ok, tt.count, tt.countKnown)
		}
		seen, last := 0, 0
		errStop := errors.New("enough")
		err := j.Params.Each(func(i int, set map[string]any) error {
			x := set["x"].(int)
			if i == 0 && x != tt.first || i > 0 && x != last+1 {
				return fmt.Errorf("set %d is %d after %d", i, x, last)
			}
			seen, last = seen+1, x
			if seen == 3*streamChunk {
				return errStop
			}
			return nil
		})
		if tt.countKnown && (err != nil || seen != tt.count || last != tt.first+tt.count-1) {
			t.Errorf("%s: %d sets, the last %d, error %v", tt.params, seen, last, err)
		}
		if !tt.countKnown && err != errStop {
			t.Errorf("%s: stopped after %d sets (the last %d): %v", tt.params, seen, last, err)
		}
	}
}

// A params list written out costs a small factor of its size, however long: it used to cost
// about 690 bytes of memory per byte of the file (issue 11, case 3).
func TestLiteralListMemory(t *testing.T) {
	var b strings.Builder
	b.WriteString("func f(x) = x\nparams [\n")
	for range 100000 {
		b.WriteString("  {x: 1},\n")
	}
	b.WriteString("]\n")
	src := b.String()
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	j := mustLoad(t, src, nil)
	n := 0
	if err := j.Params.Each(func(int, map[string]any) error { n++; return nil }); err != nil || n != 100000 {
		t.Fatalf("%d sets, %v", n, err)
	}
	goruntime.ReadMemStats(&after)
	perByte := float64(after.TotalAlloc-before.TotalAlloc) / float64(len(src))
	t.Logf("%.1f bytes allocated per byte of the file", perByte)
	if perByte > 50 {
		t.Errorf("loading and reading a list of %d bytes allocated %.0f bytes per byte", len(src), perByte)
	}
	// The same list with an expression in it is expr-lang's, and still right.
	j = mustLoad(t, "func f(x) = x\nparams [{x: 1 + 1}, {x: -2}, {x: \"a\\tb\"}, {x: [1.5, null, true]}]\n", nil)
	got := sets(t, j)
	want := []map[string]any{{"x": 2}, {"x": -2}, {"x": "a\tb"}, {"x": []any{1.5, nil, true}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sets = %v, want %v", got, want)
	}
}
