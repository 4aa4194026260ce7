package lang

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary text to Parse and Check: they must never panic, and every
// diagnostic must point at a line.
func FuzzParse(f *testing.F) {
	addSeeds(f, "testdata/good/*.mf", "testdata/errors/*.mf")
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse("testdata/fuzz.mf", src)
		if err != nil {
			checkDiagnostics(t, err)
			return
		}
		job, err := Check(file)
		if err != nil {
			checkDiagnostics(t, err)
			return
		}
		checkDiagnostics(t, job.Warnings)
		if job.Func == nil || job.Params == nil || len(job.Envs) == 0 {
			t.Fatalf("checked job lacks func, params or env: %+v", job)
		}
	})
}

// addSeeds adds the files the patterns match to the fuzzer's corpus.
func addSeeds(f *testing.F, patterns ...string) {
	for _, pattern := range patterns {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
}

func checkDiagnostics(t *testing.T, err error) {
	t.Helper()
	ds, ok := err.(Diagnostics)
	if !ok {
		t.Fatalf("error %v is a %T, want Diagnostics", err, err)
	}
	for _, d := range ds {
		if d.Pos.Line < 1 || d.Pos.Column < 1 {
			t.Fatalf("diagnostic without a position: %q", d.Error())
		}
	}
}

// FuzzJob goes further than FuzzParse with what checks: it reads the params (a sample, as
// mapflow check does), calls an expression func on the first sets, and evaluates the combiner
// over their results, the driver's whole share of a job but running programs. Run it under a
// memory cap, so that an expression the bounds miss is a crash:
//
//	prlimit --as=8000000000 go test ./lang -run '^$' -fuzz FuzzJob -fuzztime 10m
func FuzzJob(f *testing.F) {
	addSeeds(f, "testdata/good/*.mf", "testdata/errors/*.mf", "../examples/*.mf")
	for _, src := range []string{
		"func f(x) = x\nparams [{x: 1}]\ncombine len(map(1..10000000000, #))\n",
		"func f(x) = x\nparams filter(map(1..10000000000, ({x: #})), .x < 3)\n",
		"func f(x) = x\nparams [{x: 1}]\ncombine repeat(repeat(\"ab\", 100000), 100000)\n",
		"func f(x) = repeat(\"x\", x)\nparams [{x: 100000000}]\n",
		"func f(x) = len(reduce(1..40, #acc + #acc, \"ab\"))\nparams [{x: 1}]\n",
		"func f(x) = len(reduce(1..40, join([#acc, #acc]), \"ab\"))\nparams [{x: 1}]\n",
		"func f(x) = reduce(1..40, [#acc, #acc], x)\nparams [{x: 1}]\n",
		"func f(x) = len(replace(repeat(\"a\", 100000), \"\", repeat(\"b\", 100000)))\nparams [{x: 1}]\n",
		"func f(a, b) = a * b\nparams grid {a: 1..100000, b: 1..100000}\ncombine sum(results)\n",
	} {
		f.Add([]byte(src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse("testdata/fuzz.mf", src)
		if err != nil {
			return
		}
		job, err := Check(file)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var sets []map[string]any
		_ = job.Params.Each(func(i int, set map[string]any) error {
			if len(sets) == 5 || ctx.Err() != nil {
				return errLintStop
			}
			sets = append(sets, set)
			return nil
		})
		var results []any
		caller := job.Func.NewCaller()
		for _, set := range sets {
			if job.Func.IsExec() || job.Func.WarmFunc() != nil {
				break
			}
			if v, err := callRecovered(caller, set); err == nil {
				results = append(results, v)
			}
		}
		if job.Combine != nil && job.Combine.Warm == nil {
			tasks := map[string]any{}
			for i, r := range results {
				tasks[job.Func.Name+"-"+strconv.Itoa(i)] = r
			}
			_, _ = evalRecovered(job.Combine, map[string]any{"results": results, "tasks": tasks})
		}
	})
}

// callRecovered and evalRecovered recover a panic of the evaluator, as the runtime does.
func callRecovered(c *Caller, set map[string]any) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.Call(set)
}

func evalRecovered(e *Expr, vars map[string]any) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return e.Eval(vars)
}
