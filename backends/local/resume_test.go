package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
)

// TestMain lets the test binary act as a driver process that a test can kill -9.
func TestMain(m *testing.M) {
	if os.Getenv("MAPFLOW_TEST_DRIVER") != "" {
		os.Exit(driverMain(os.Getenv("MAPFLOW_TEST_JOB"), os.Getenv("MAPFLOW_TEST_CATALOG")))
	}
	os.Exit(m.Run())
}

func driverMain(jobPath, catPath string) int {
	job, err := lang.Load(jobPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	env, _ := job.DefaultEnv("")
	cat, err := catalog.Open(catPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer cat.Close()
	b, err := rt.NewBackend(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := rt.Run(context.Background(), cat, b, job, env, rt.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestResumeAfterKill kills a driver with SIGKILL mid-job, resumes the job, and checks that
// every task ends Completed and that no task recorded Completed before the kill ran again.
func TestResumeAfterKill(t *testing.T) {
	const n = 24
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	os.Mkdir(runs, 0o755)
	src := fmt.Sprintf(`job killme

env local { workers = 2 }

func f(i) = exec("sh", "-c", "echo x >> \"$2/$1\"; sleep 0.15; echo \"$1\"", "sh", i, %q)

params map(0..%d, ({i: #}))

combine sum(results)
`, runs, n-1)
	jobPath := filepath.Join(dir, "killme.mf")
	os.WriteFile(jobPath, []byte(src), 0o644)
	catPath := filepath.Join(dir, "catalog.db")
	cat, err := catalog.Open(catPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()

	self, _ := os.Executable()
	child := exec.Command(self)
	child.Env = append(os.Environ(), "MAPFLOW_TEST_DRIVER=1", "MAPFLOW_TEST_JOB="+jobPath, "MAPFLOW_TEST_CATALOG="+catPath)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var row *catalog.Job
	deadline := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(deadline) {
			child.Process.Kill()
			t.Fatal("the driver completed no task in 30s")
		}
		time.Sleep(50 * time.Millisecond)
		if row == nil {
			row, _ = cat.FindJob(ctx, "killme")
			continue
		}
		counts, err := cat.CountByStatus(ctx, row.ID)
		if err == nil && counts["Completed"] >= 6 {
			break
		}
	}
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	time.Sleep(400 * time.Millisecond) // let the orphaned attempts end

	before := map[int]bool{}
	err = cat.Tasks(ctx, row.ID, func(tk *catalog.Task) error {
		if tk.Status == "Completed" {
			before[tk.Index] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(before) == 0 || len(before) == n {
		t.Fatalf("%d of %d tasks were Completed at the kill", len(before), n)
	}
	if row, err = cat.FindJob(ctx, row.ID); err != nil {
		t.Fatal(err)
	}
	if row.Status != "Running" {
		t.Fatalf("killed job is %s", row.Status)
	}

	newBackend := rt.NewBackend
	rep, err := rt.Resume(ctx, cat, newBackend, row, rt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != rt.Completed || rep.NumTasks != n || rep.Combined != n*(n-1)/2 {
		t.Errorf("resumed: %s, %d tasks, combined %v", rep.Status, rep.NumTasks, rep.Combined)
	}
	for i := 0; i < n; i++ {
		if rep.MapResults[i] != i {
			t.Errorf("map result %d = %v", i, rep.MapResults[i])
		}
		data, _ := os.ReadFile(filepath.Join(runs, fmt.Sprint(i)))
		if k := strings.Count(string(data), "x"); before[i] && k != 1 {
			t.Errorf("task %d was Completed before the kill but ran %d times", i, k)
		} else if k == 0 {
			t.Errorf("task %d never ran", i)
		}
	}
	counts, _ := cat.CountByStatus(ctx, row.ID)
	if counts["Completed"] != n {
		t.Errorf("rows by status after resume: %v", counts)
	}
	t.Logf("%d tasks Completed before the kill", len(before))
}

func TestResumeRefusesLiveDriver(t *testing.T) {
	cat, err := catalog.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	row := &catalog.Job{ID: "x-1", Name: "x", Status: "Running", DriverPID: 1, DriverHost: "elsewhere", Heartbeat: time.Now().UTC()}
	_, err = rt.Resume(context.Background(), cat, nil, row, rt.Options{})
	if err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("got %v", err)
	}
}
