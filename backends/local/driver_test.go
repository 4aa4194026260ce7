package local

import (
	"context"
	"strings"
	"testing"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/backendtest"
)

// runFile writes the job file and its other files, and runs it on the local backend.
func runFile(t *testing.T, src string, files map[string]string) (*rt.Report, error, *catalog.Catalog) {
	t.Helper()
	job, env, cat := backendtest.Load(t, src, files)
	rep, err := rt.Run(context.Background(), cat, New(Config{Workers: 2}), job, env, rt.Options{})
	return rep, err, cat
}

func TestParamsErrorFailsTheJob(t *testing.T) {
	rep, err, cat := runFile(t, "job bad\nfunc f(x) = x\nparams file \"sets.jsonl\"\n",
		map[string]string{"sets.jsonl": "{\"x\": 1}\n{\"x\": 2}\nnot json\n"})
	if err == nil || !strings.Contains(err.Error(), "sets.jsonl:3") {
		t.Fatalf("error %v, want one naming sets.jsonl:3", err)
	}
	if rep == nil || rep.Status != rt.Failed {
		t.Fatalf("report %+v", rep)
	}
	row, ferr := cat.FindJob(context.Background(), rep.JobID)
	if ferr != nil || row.Status != "Failed" || !strings.Contains(row.Error, "sets.jsonl:3") {
		t.Errorf("job row %+v (%v)", row, ferr)
	}
}

func TestExpressionFailureIsNotRetried(t *testing.T) {
	rep, err, cat := runFile(t, "job noretry\nfunc f(x) = x + 1\nparams [{x: 1}, {x: \"a\"}]\nretries 3\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.NumFailed != 1 {
		t.Fatalf("%d failed", rep.NumFailed)
	}
	var attempt int
	cat.Tasks(context.Background(), rep.JobID, func(tk *catalog.Task) error {
		if tk.Index == 1 {
			attempt = tk.Attempt
		}
		return nil
	})
	if attempt != 1 {
		t.Errorf("failed expression task made %d attempts", attempt)
	}
}

// TestSettings: the local kind's settings, as the job language decodes and checks them.
func TestSettings(t *testing.T) {
	check := func(block string) (*Config, error) {
		f, err := lang.Parse("job.mf", []byte(block+"\nfunc f(x) = x\nparams [{x: 1}]\n"))
		if err != nil {
			return nil, err
		}
		j, err := lang.Check(f)
		if err != nil {
			return nil, err
		}
		return j.Envs[0].Options.(*Config), nil
	}
	if c, err := check("env local { workers = 3 }"); err != nil || c.Workers != 3 {
		t.Errorf("workers = 3: %+v, %v", c, err)
	}
	if _, err := check("env local { workers = 0 }"); err == nil || !strings.Contains(err.Error(), `job.mf:1:23: setting "workers" must be from 1 to 4096, got integer 0`) {
		t.Errorf("workers = 0: %v", err)
	}
	if c, err := check("env local {}"); err != nil || c.workers() < 1 {
		t.Errorf("default: %+v %v", c, err)
	}
}
