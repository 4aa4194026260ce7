package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/backendtest"
)

// TestDriverMemoryIsFlat runs a streamed job of 500,000 tasks and one of 2,000,000 (no
// combiner) and compares the process's peak RSS over each: finished rows, results and params
// must leave memory once written, so four times the tasks may not cost more than a tenth more
// memory, give or take 16 MB: the peak of a run of about a hundred MB moves by that much from
// run to run with the GC's timing (the driver that kept every result grew 137 MB here). The
// measure is Linux's high-water mark, reset before each run (clear_refs); no time is measured.
func TestDriverMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 2.5 million tasks")
	}
	if err := resetPeakRSS(); err != nil {
		t.Skipf("no way to reset the peak RSS here: %v", err)
	}
	small := peakRSSOfRun(t, 500_000)
	large := peakRSSOfRun(t, 2_000_000)
	t.Logf("peak RSS: %d MB for 500,000 tasks, %d MB for 2,000,000", small>>20, large>>20)
	if float64(large) > 1.10*float64(small)+16<<20 {
		t.Errorf("peak RSS grew with the task count: %d MB for 500,000 tasks, %d MB for 2,000,000 (more than 10%% and 16 MB)",
			small>>20, large>>20)
	}
}

// peakRSSOfRun runs an n-task expression job with a fresh catalog and returns the peak RSS
// of the process while it ran.
func peakRSSOfRun(t *testing.T, n int) int64 {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "flat.mf")
	src := fmt.Sprintf("job flat\nenv local {}\nfunc add(x, y) = x + y\nparams map(1..%d, ({x: #, y: #}))\n", n)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	job, err := lang.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := job.DefaultEnv("")
	cat, err := catalog.Open(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	b, err := rt.NewBackend(env)
	if err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory()
	if err := resetPeakRSS(); err != nil {
		t.Fatal(err)
	}
	rep, err := rt.Run(context.Background(), cat, b, job, env, rt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	peak := backendtest.PeakRSS()
	if peak == 0 {
		t.Fatal("no VmHWM in /proc/self/status")
	}
	if rep.Status != rt.Completed || rep.NumDone != n || rep.NumResults != n || rep.MapResults[rt.ShownResults-1] != 2*rt.ShownResults {
		t.Fatalf("run of %d tasks: %s, %d done, %d results", n, rep.Status, rep.NumDone, rep.NumResults)
	}
	return peak
}

// resetPeakRSS sets the process's peak RSS to its current RSS (Linux 4.0 on).
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
