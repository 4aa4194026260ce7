package local

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/backendtest"
)

// BenchmarkLocal1M runs a million expression tasks through the whole driver into a catalog
// file and reports tasks/s and the process's peak RSS:
//
//	go test ./backends/local -run XXX -bench Local1M -benchtime 1x
func BenchmarkLocal1M(b *testing.B) {
	benchmark1M(b, "params map(1..1000000, ({x: #, y: #}))")
}

// BenchmarkLocal1MFile is BenchmarkLocal1M with the parameter sets streamed from a .jsonl
// file, which shows the driver's own footprint: an expression list is built whole in memory
// before its first task runs.
func BenchmarkLocal1MFile(b *testing.B) {
	benchmark1M(b, `params file "sets.jsonl"`)
}

func benchmark1M(b *testing.B, params string) {
	const n = 1000000
	files := map[string][]byte{}
	if strings.Contains(params, "sets.jsonl") {
		var sets []byte
		for i := 1; i <= n; i++ {
			sets = append(sets, `{"x": `...)
			sets = strconv.AppendInt(sets, int64(i), 10)
			sets = append(sets, `, "y": `...)
			sets = strconv.AppendInt(sets, int64(i), 10)
			sets = append(sets, "}\n"...)
		}
		files["sets.jsonl"] = sets
	}
	benchmarkJob(b, n, "job add\n\nfunc add(x, y) = x + y\n\n"+params+"\n\ncombine sum(results)\n", files)
}

// benchmarkJob runs the job file src (beside files) b.N times through the whole driver into a
// catalog file, checks that its n tasks summed to n(n+1), and reports tasks/s and peak RSS.
func benchmarkJob(b *testing.B, n int, src string, files map[string][]byte) {
	dir := b.TempDir()
	path := filepath.Join(dir, "job.mf")
	files["job.mf"] = []byte(src)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	job, err := lang.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	env, err := job.DefaultEnv("")
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		cat, err := catalog.Open(filepath.Join(dir, "catalog-"+strconv.Itoa(i)+".db"))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rep, err := rt.Run(context.Background(), cat, backendtest.FromEnv(b, env), job, env, rt.Options{})
		total += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Status != rt.Completed || rep.NumTasks != n || rep.Combined != n*(n+1) {
			b.Fatalf("status %s, %d tasks, combined %v", rep.Status, rep.NumTasks, rep.Combined)
		}
		cat.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "tasks/s")
	if hwm := backendtest.PeakRSS(); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MB")
	}
}

// BenchmarkPython100k runs 100,000 tasks of a Python add(x, y) in two warm workers through the
// whole driver into a catalog file:
//
//	go test ./backends/local -run XXX -bench Python100k -benchtime 1x
func BenchmarkPython100k(b *testing.B) {
	benchmarkJob(b, 100000, "job add\n\nenv local { workers = 2 }\n\nfunc add(x, y) = python(\"add.py\")\n\n"+
		"params map(1..100000, ({x: #, y: #}))\n\ncombine sum(results)\n",
		map[string][]byte{"add.py": []byte("def add(x, y):\n    return x + y\n")})
}
