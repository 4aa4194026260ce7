package report

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mapflow/mapflow/backends/local" // the local kind
	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
)

// runJob runs the job file at path on the local backend, recording it in a new catalog in a
// temporary directory, and returns the catalog and the job's row.
func runJob(t testing.TB, path string) (*catalog.Catalog, *catalog.Job) {
	t.Helper()
	ctx := context.Background()
	job, err := lang.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env, err := job.DefaultEnv("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := rt.NewBackend(env)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	rep, err := rt.Run(ctx, cat, b, job, env, rt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	row, err := cat.FindJob(ctx, rep.JobID)
	if err != nil {
		t.Fatal(err)
	}
	return cat, row
}

// writeJob writes a job file and the files beside it into a new temporary directory and
// returns the job file's path. files maps names to contents; the job file is "job.mf".
func writeJob(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "job.mf")
}

// writeReport writes the job's report to a file in a temporary directory and returns the
// file's path and contents.
func writeReport(t testing.TB, cat *catalog.Catalog, job *catalog.Job) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, cat, job); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), job.Name+".html")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, buf.Bytes()
}

// embedded is the page's data as report.js reads it.
type embedded struct {
	Timeline *struct {
		Lanes    []string           `json:"lanes"`
		Statuses []string           `json:"statuses"`
		Errors   []string           `json:"errors"`
		Span     int64              `json:"span"`
		Tasks    json.RawMessage    `json:"tasks"`
		Bars     map[string][]int64 `json:"bars"`
	} `json:"timeline"`
}

// pageData finds the JSON in the page's #report-data element and decodes it.
func pageData(t testing.TB, page []byte) (raw string, data embedded) {
	t.Helper()
	const open = `<script id="report-data" type="application/json">`
	i := bytes.Index(page, []byte(open))
	if i < 0 {
		t.Fatalf("no %s in the page", open)
	}
	rest := page[i+len(open):]
	j := bytes.Index(rest, []byte("</script>"))
	if j < 0 {
		t.Fatal("the data element is not closed")
	}
	raw = string(rest[:j])
	if err := json.Unmarshal(rest[:j], &data); err != nil {
		t.Fatalf("the page's data is not JSON: %v", err)
	}
	return raw, data
}
