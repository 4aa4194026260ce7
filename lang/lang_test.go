package lang

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// load writes src as job.mf (and files beside it) in a temporary directory and loads it.
func load(t *testing.T, src string, files map[string]string) (*Job, error) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "job.mf")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

func mustLoad(t *testing.T, src string, files map[string]string) *Job {
	t.Helper()
	j, err := load(t, src, files)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return j
}

// sets collects every parameter set of j.
func sets(t *testing.T, j *Job) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := j.Params.Each(func(i int, set map[string]any) error {
		if i != len(out) {
			t.Fatalf("index %d, want %d", i, len(out))
		}
		out = append(out, set)
		return nil
	}); err != nil {
		t.Fatalf("each: %v", err)
	}
	return out
}

func TestAddExample(t *testing.T) {
	j, err := Load("testdata/good/add.mf")
	if err != nil {
		t.Fatal(err)
	}
	if j.Name != "add" || j.Func.Name != "add" || !cmp.Equal(j.Func.Params, []string{"x", "y"}) {
		t.Errorf("job %q func %q %v", j.Name, j.Func.Name, j.Func.Params)
	}
	if got, want := j.Func.Body.Text, "x + y"; got != want {
		t.Errorf("body text %q, want %q", got, want)
	}
	if got, want := j.Func.Body.Pos.String(), "testdata/good/add.mf:21:18"; got != want {
		t.Errorf("body pos %s, want %s", got, want)
	}
	type env struct {
		Kind, Name string
		Settings   map[string]any
	}
	var envs []env
	for _, e := range j.Envs {
		s := map[string]any{}
		for k, v := range e.Settings {
			s[k] = v.Value
		}
		envs = append(envs, env{e.Kind, e.Name, s})
	}
	want := []env{
		{"local", "local", map[string]any{"workers": int64(3)}},
		{"ec2", "prod", map[string]any{"hosts": int64(3), "s3_path": "s3://add-test/mapflow", "region": "us-west-2",
			"instance_type": "t3.micro", "ami": "ami-0123456789abcdef0"}},
		{"hadoop", "cluster", map[string]any{"containers": int64(3), "dist_path": "hdfs://namenode:8020/user/me/mapflow",
			"hadoop_conf_dir": "~/yarn-conf", "container_memory_mb": int64(512)}},
	}
	if diff := cmp.Diff(want, envs); diff != "" {
		t.Errorf("envs (-want +got):\n%s", diff)
	}
	for _, name := range []string{"", "local", "prod", "cluster"} {
		e, err := j.DefaultEnv(name)
		if err != nil || (name != "" && e.Name != name) || (name == "" && e.Name != "local") {
			t.Errorf("DefaultEnv(%q) = %v, %v", name, e, err)
		}
	}
	if _, err := j.DefaultEnv("nope"); !errors.Is(err, ErrUnknownEnv) {
		t.Errorf("DefaultEnv(nope) error %v, want ErrUnknownEnv", err)
	}

	c := j.Func.NewCaller()
	var results []any
	for _, set := range sets(t, j) {
		v, err := c.Call(set)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, v)
	}
	if diff := cmp.Diff([]any{40, 20, 10}, results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if !j.Combine.Uses("results") || j.Combine.Uses("tasks") {
		t.Errorf("combine uses results=%v tasks=%v", j.Combine.Uses("results"), j.Combine.Uses("tasks"))
	}
	got, err := j.Combine.Eval(map[string]any{"results": results})
	if err != nil || got != 70 {
		t.Errorf("combine = %v, %v; want 70", got, err)
	}
}

func TestGoodFiles(t *testing.T) {
	files := map[string]string{
		"train.py":   "print(1)\n",
		"lib/u.py":   "",
		"sets.jsonl": "{\"x\": 1, \"y\": 2.5}\n\n{\"x\": 3, \"y\": null, \"z\": [1, {\"a\": 2}]}\n",
		"sets.csv":   "x,y,name\n1,2.5,a\n-3,,true\n",
	}
	tests := []struct {
		name  string
		src   string
		sets  []map[string]any
		check func(t *testing.T, j *Job)
	}{
		{
			name: "defaults",
			src:  "func f(x) = x * 2\nparams [{x: 1}]\n",
			sets: []map[string]any{{"x": 1}},
			check: func(t *testing.T, j *Job) {
				if j.Name != "job" || len(j.Envs) != 1 || j.Envs[0].Kind != "local" || j.Combine != nil || j.Retries != 0 || j.Timeout != 0 {
					t.Errorf("defaults: %+v", j)
				}
			},
		},
		{
			name: "exec with ship",
			src:  "func train(lr, depth) = exec(\"python3\", \"train.py\", \"--lr\", lr, \"--depth\", depth)\nship \"train.py\", \"lib/u.py\"\nship \"lib\"\nparams [{lr: 0.1, depth: 3}]\n",
			sets: []map[string]any{{"lr": 0.1, "depth": 3}},
			check: func(t *testing.T, j *Job) {
				if !j.Func.IsExec() {
					t.Error("IsExec false")
				}
				var paths []string
				for _, s := range j.Ship {
					paths = append(paths, s.Path)
					if !filepath.IsAbs(s.Abs) {
						t.Errorf("ship %s: Abs %q not absolute", s.Path, s.Abs)
					}
				}
				// lib/u.py is in lib: shipped once, or its second copy would collide.
				if diff := cmp.Diff([]string{"train.py", "lib"}, paths); diff != "" {
					t.Errorf("ship (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "grid",
			src:  "func f(lr, depth) = lr * depth\nparams grid {\n  lr: [0.1, 0.01],  // comment\n  depth: map(1..2, # * 3),\n}\n",
			sets: []map[string]any{{"lr": 0.1, "depth": 3}, {"lr": 0.1, "depth": 6}, {"lr": 0.01, "depth": 3}, {"lr": 0.01, "depth": 6}},
		},
		{
			name: "jsonl",
			src:  "func f(x, y) = x\nparams file \"sets.jsonl\"\n",
			sets: []map[string]any{{"x": 1, "y": 2.5}, {"x": 3, "y": nil, "z": []any{1, map[string]any{"a": 2}}}},
		},
		{
			name: "csv",
			src:  "func f(x, y) = x\nparams file \"sets.csv\"\n",
			sets: []map[string]any{{"x": 1, "y": 2.5, "name": "a"}, {"x": -3, "y": nil, "name": true}},
		},
		{
			name: "retries timeout combine tasks",
			src:  "job \"j2\"\nfunc f(x) = x\nparams map(1..3, ({x: #}))\nretries 2\ntimeout 1.5m\ncombine len(tasks)\n",
			sets: []map[string]any{{"x": 1}, {"x": 2}, {"x": 3}},
			check: func(t *testing.T, j *Job) {
				if j.Name != "j2" || j.Retries != 2 || j.Timeout != 90*time.Second || !j.Combine.Uses("tasks") || j.Combine.Uses("results") {
					t.Errorf("got name %q retries %d timeout %v", j.Name, j.Retries, j.Timeout)
				}
			},
		},
		{
			name: "null nil comments and pointers",
			src:  "func f(x) = x ?? \"none\"   # comment\nparams [\n  {x: null}, // a null\n  {x: nil},  /* a nil */\n  {x: 'a#b'},\n]\n",
			sets: []map[string]any{{"x": nil}, {"x": nil}, {"x": "a#b"}},
		},
		{
			name: "crlf and tabs",
			src:  "func f(x) = x\r\n\tparams [{x: 1},\r\n\t{x: 2}]\r\nenv local {\r\n\tworkers = 2\r\n}\r\n",
			sets: []map[string]any{{"x": 1}, {"x": 2}},
		},
		{
			name: "env separators",
			src:  "env local { workers = 2, }\nenv ec2 { s3_path = \"s3://bkt/p\", ami = \"ami-1\"\n security_groups = [\"sg-1\", \"sg-2\",], spot = true, idle_shutdown_timeout = 5m }\nfunc f(x) = x\nparams [{x: 1}]\n",
			sets: []map[string]any{{"x": 1}},
			check: func(t *testing.T, j *Job) {
				e, _ := j.DefaultEnv("ec2")
				if !cmp.Equal(e.Settings["security_groups"].Value, []string{"sg-1", "sg-2"}) || e.Settings["spot"].Value != true ||
					e.Settings["idle_shutdown_timeout"].Value != 5*time.Minute {
					t.Errorf("ec2 settings %+v", e.Settings)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustLoad(t, tt.src, files)
			if diff := cmp.Diff(tt.sets, sets(t, j)); diff != "" {
				t.Errorf("sets (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t, j)
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	tests := []struct {
		name, src string
		set       map[string]any
		exc, msg  string
		pos       string // line:col
	}{
		{"null plus int", "func add(x, y) = x + y\nparams [{x: 1, y: 1}]\n", map[string]any{"x": nil, "y": 10}, "TypeError", "unsupported operand types for +: null and int", "1:20"},
		{"missing key", "func add(x, y) = x + y\nparams [{x: 1, y: 1}]\n", map[string]any{"x": 1}, "KeyError", `parameter "y" is missing from this parameter set`, "1:6"},
		{"division by zero", "func f(x, y) = (\n  x / y)\nparams [{x: 1, y: 1}]\n", map[string]any{"x": 1, "y": 0}, "ZeroDivisionError", "division by zero", "2:5"},
		{"float division by zero", "func f(x, y) = x / y\nparams [{x: 1, y: 1}]\n", map[string]any{"x": 1.5, "y": 0.0}, "ZeroDivisionError", "division by zero", "1:18"},
		{"modulo by zero", "func f(x, y) = x % y\nparams [{x: 1, y: 1}]\n", map[string]any{"x": 1, "y": 0}, "ZeroDivisionError", "integer modulo by zero", "1:18"},
		{"unary minus string", "func f(x) = -x\nparams [{x: 1}]\n", map[string]any{"x": "a"}, "TypeError", "bad operand type for unary -: string", "1:13"},
		{"list plus object", "func f(x, y) = x + y\nparams [{x: 1, y: 1}]\n", map[string]any{"x": []any{}, "y": map[string]any{}}, "TypeError", "unsupported operand types for +: list and object", "1:18"},
		{"fetch from int", "func f(x) = x.foo\nparams [{x: 1}]\n", map[string]any{"x": 1}, "TypeError", "cannot fetch foo from int", "1:15"},
		{"index", "func f(x) = x[5]\nparams [{x: 1}]\n", map[string]any{"x": []any{1}}, "IndexError", "index out of range: 5 (array length is 1)", "1:14"},
		{"exec null", "func f(x) = exec(\"prog\", x)\nparams [{x: 1}]\n", map[string]any{"x": nil}, "TypeError", "exec argument 2 is null", "1:13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustLoad(t, tt.src, nil)
			_, err := j.Func.NewCaller().Call(tt.set)
			var ee *EvalError
			if !errors.As(err, &ee) {
				t.Fatalf("error %v (%T), want *EvalError", err, err)
			}
			pos := strings.TrimPrefix(ee.Pos.String(), j.Filename+":")
			if ee.Exception != tt.exc || ee.Message != tt.msg || pos != tt.pos {
				t.Errorf("got %s %q at %s, want %s %q at %s", ee.Exception, ee.Message, pos, tt.exc, tt.msg, tt.pos)
			}
			lines := strings.Split(ee.Traceback, "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[0], ee.Pos.String()+": in func ") || !strings.HasSuffix(lines[2], "^") {
				t.Errorf("traceback:\n%s", ee.Traceback)
			}
		})
	}
}

func TestTraceback(t *testing.T) {
	src := "# a\n\tfunc add(x, y) = x + y\nparams [{x: 1, y: 2}]\n"
	j := mustLoad(t, src, nil)
	_, err := j.Func.NewCaller().Call(map[string]any{"x": nil, "y": 1})
	var ee *EvalError
	if !errors.As(err, &ee) {
		t.Fatal(err)
	}
	want := ee.Pos.String() + ": in func add(x, y)\n    \tfunc add(x, y) = x + y\n    \t                   ^"
	if ee.Traceback != want {
		t.Errorf("traceback\n%s\nwant\n%s", ee.Traceback, want)
	}
	if got := strings.TrimPrefix(ee.Pos.String(), j.Filename); got != ":2:21" {
		t.Errorf("pos %s", got)
	}
}

func TestExecArgs(t *testing.T) {
	j := mustLoad(t, "func f(a, b, c, d, e, g) = exec(\"prog\", a, b, c, d, e, g, 3.0, 0.1, 1e21, -2)\nparams [{a: 1, b: 2, c: 3, d: 4, e: 5, g: 6}]\n", nil)
	v, err := j.Func.NewCaller().Call(map[string]any{
		"a": "; touch /tmp/pwned", "b": 42, "c": 2.5, "d": true,
		"e": []any{1, "x<y"}, "g": map[string]any{"k": nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Command{Args: []string{"prog", "; touch /tmp/pwned", "42", "2.5", "true", `[1,"x<y"]`, `{"k":null}`, "3", "0.1", "1000000000000000000000", "-2"}}
	if diff := cmp.Diff(want, v); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
}

func TestCombineTasks(t *testing.T) {
	j := mustLoad(t, "func f(x) = x\nparams [{x: 1}]\ncombine len(results) + len(tasks)\n", nil)
	if !j.Combine.Uses("results") || !j.Combine.Uses("tasks") {
		t.Error("uses")
	}
	v, err := j.Combine.Eval(map[string]any{"results": []any{1}, "tasks": map[string]any{"a": 1, "b": nil}})
	if err != nil || v != 3 {
		t.Errorf("got %v, %v", v, err)
	}
	j = mustLoad(t, "func f(x) = x\nparams [{x: 1}]\ncombine sum(results) / len(results)\n", nil)
	_, err = j.Combine.Eval(map[string]any{"results": []any{}})
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Exception != "ZeroDivisionError" || !strings.Contains(ee.Traceback, "in combine") {
		t.Errorf("got %v", err)
	}
}

func BenchmarkCall(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "add.mf")
	if err := os.WriteFile(p, []byte("func add(x, y) = x + y\nparams [{x: 1, y: 2}]\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	j, err := Load(p)
	if err != nil {
		b.Fatal(err)
	}
	c := j.Func.NewCaller()
	set := map[string]any{"x": 1, "y": 2}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Call(set); err != nil {
			b.Fatal(err)
		}
	}
}

func TestResultsAreJSONLike(t *testing.T) {
	j := mustLoad(t, "func f(x) = {r: 1..3, d: duration('1s'), n: null, s: [x, nil]}\nparams [{x: 1..2}]\n", nil)
	set := sets(t, j)[0]
	if diff := cmp.Diff(map[string]any{"x": []any{1, 2}}, set); diff != "" {
		t.Errorf("set (-want +got):\n%s", diff)
	}
	v, err := j.Func.NewCaller().Call(set)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"r": []any{1, 2, 3}, "d": "1s", "n": nil, "s": []any{[]any{1, 2}, nil}}
	if diff := cmp.Diff(want, v); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

// TestCacheStatement: `cache` and `cache true` turn caching on, `cache false` and no statement
// leave it off; the function's canonical text leaves out comments and layout.
func TestCacheStatement(t *testing.T) {
	const base = "func add(x, y) = x + y\nparams [{x: 1, y: 2}]\n"
	for src, want := range map[string]bool{
		base: false, base + "cache\n": true, base + "cache true\n": true, base + "cache false\n": false,
		base + "cache # reuse earlier runs\n": true,
	} {
		if got := mustLoad(t, src, nil).Cache; got != want {
			t.Errorf("%q: Cache = %v, want %v", src, got, want)
		}
	}
	a := mustLoad(t, "func add(x, y) = [x,\n  y /* the second */ ,\n  x + y]  # sum\nparams [{x: 1, y: 2}]\n", nil)
	b := mustLoad(t, "func add(x, y) = [x, y, x+y]\nparams [{x: 1, y: 2}]\n", nil)
	if a.Func.Canon != b.Func.Canon || a.Func.Canon != "[ x , y , x + y ]" {
		t.Errorf("Canon = %q and %q; want both %q", a.Func.Canon, b.Func.Canon, "[ x , y , x + y ]")
	}
}
