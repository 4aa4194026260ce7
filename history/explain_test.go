package history

import (
	"slices"
	"testing"

	"github.com/mapflow/mapflow/lang"
)

func funcOfText(t *testing.T, src string) *lang.FuncSyntax {
	t.Helper()
	f, err := lang.Parse("job.mf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f.Func()
}

// TestFuncChange names the line of the first token that differs, and nothing for a comment.
func TestFuncChange(t *testing.T) {
	was := funcOfText(t, "job a\nfunc f(x) = [x,\n  x + 1]\nparams [{x: 1}]\n")
	for src, want := range map[string]string{
		"job a\n# a comment\nfunc f(x) = [x, x + 1]  # another\nparams [{x: 1}]\n": "",
		"job a\nfunc f(x) = [x,\n  x + 2]\nparams [{x: 1}]\n":                      "function text changed (line 3): [ x , x + 2 ], was: [ x , x + 1 ]",
		"job a\n\nfunc f(x) = [x]\nparams [{x: 1}]\n":                              "function text changed (line 3): [ x ], was: [ x , x + 1 ]",
		"job a\nfunc f(y) = [y, y + 1]\nparams [{y: 1}]\n":                         "the function's parameters changed (line 2): (y), was (x)",
	} {
		if got := funcChange(funcOfText(t, src), was); got != want {
			t.Errorf("%q:\n got %q\nwant %q", src, got, want)
		}
	}
}

// TestParamChanges names the function's params whose values differ; 1 and 1.0 are one value.
func TestParamChanges(t *testing.T) {
	got := paramChanges([]string{"a", "b", "c", "d"},
		[]byte(`{"a": 1, "b": {"x": 1, "y": 2}, "c": "s", "e": 9}`),
		[]byte(`{"a": 1.0, "b": {"y": 2, "x": 1}, "d": [1], "e": 10}`))
	want := []string{`param c "s" → (missing)`, `param d (missing) → [1]`}
	if !slices.Equal(got, want) {
		t.Errorf("paramChanges = %q, want %q", got, want)
	}
}

// TestJSONEqual: 1 and 1.0 are one value; integers past 2^53 are told apart.
func TestJSONEqual(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{`1`, `1.0`, true}, {`{"a": [1, 2e0]}`, `{"a": [1.0, 2]}`, true},
		{`9007199254740992`, `9007199254740993`, false}, {`1`, `"1"`, false},
	} {
		if got := jsonEqual([]byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("jsonEqual(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
