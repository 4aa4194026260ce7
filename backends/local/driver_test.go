package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
)

// runFile writes the job file and its other files, and runs it on the local backend.
func runFile(t *testing.T, src string, files map[string]string) (*rt.Report, error, *catalog.Catalog) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
	}
	path := filepath.Join(dir, "job.mf")
	os.WriteFile(path, []byte(src), 0o644)
	job, err := lang.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := job.DefaultEnv("")
	cat, err := catalog.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
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

func TestConfigFromEnv(t *testing.T) {
	c, err := ConfigFromEnv(&lang.Env{Kind: "local", Settings: map[string]lang.Setting{"workers": {Value: int64(3)}}})
	if err != nil || c.Workers != 3 {
		t.Errorf("got %+v, %v", c, err)
	}
	if _, err := ConfigFromEnv(&lang.Env{Kind: "local", Settings: map[string]lang.Setting{"workers": {Value: int64(0)}}}); err == nil {
		t.Error("workers = 0 accepted")
	}
	if c, err := ConfigFromEnv(&lang.Env{Kind: "local"}); err != nil || c.workers() < 1 {
		t.Errorf("default: %+v %v", c, err)
	}
}
