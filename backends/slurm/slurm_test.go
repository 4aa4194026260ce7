package slurm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/backendtest"
)

// The cluster tests run against the cluster of scripts/slurm-cluster, whose `start` prints the
// variables read here. Without them the tests skip, unless MAPFLOW_REQUIRE_SLURM=1 (CI) makes
// that a failure.
func cluster(t *testing.T) (workDir string) {
	workDir = os.Getenv("MAPFLOW_SLURM_WORK_DIR")
	if workDir == "" || os.Getenv("SLURM_CONF") == "" {
		if os.Getenv("MAPFLOW_REQUIRE_SLURM") == "1" {
			t.Fatal("MAPFLOW_REQUIRE_SLURM=1 but no cluster: run eval \"$(scripts/slurm-cluster start)\"")
		}
		t.Skip("no Slurm cluster: eval \"$(scripts/slurm-cluster start)\" to run these tests")
	}
	return workDir
}

// TestMain builds the mapflow binary that the array tasks run: the test binary is not it.
func TestMain(m *testing.M) {
	backendtest.MainWithWorker(m, os.Getenv("MAPFLOW_SLURM_WORK_DIR") != "", "../../cmd/mapflow")
}

func TestConformance(t *testing.T) {
	workDir := cluster(t)
	env := fmt.Sprintf("env slurm test {\n  array_size = 3\n  cpus_per_task = 1\n  work_dir = %q\n}", workDir)
	backendtest.Run(t, func(t *testing.T, env *lang.Env) rt.Backend {
		b := backendtest.FromEnv(t, env).(*Backend)
		b.Log = testLog{t}
		b.WatchEvery = 300 * time.Millisecond
		return b
	}, backendtest.Options{
		Env:             env,
		Timeout:         3 * time.Minute,
		LoseWorker:      loseWorker,
		SeparateWorkers: true,
	})
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// loseWorker cancels one running array task of the backend's array, as a node that dies.
func loseWorker(t *testing.T, b rt.Backend) {
	arr := b.(*Backend).LastArray()
	for range 50 {
		out, _ := exec.Command("squeue", "-h", "-r", "-t", "RUNNING", "-j", arr, "-o", "%i").Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			t.Logf("canceling array task %s", ids[0])
			if out, err := exec.Command("scancel", ids[0]).CombinedOutput(); err != nil {
				t.Errorf("scancel %s: %v %s", ids[0], err, out)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("no running array task of job %s to cancel", arr)
}

// TestSettings: the slurm kind's settings, as the job language decodes and checks them.
func TestSettings(t *testing.T) {
	check := func(block string) error {
		f, err := lang.Parse("job.mf", []byte("env slurm hpc {\n"+block+"\n}\nfunc f(x) = x\nparams [{x: 1}]\n"))
		if err != nil {
			return err
		}
		_, err = lang.Check(f)
		return err
	}
	for _, tc := range []struct{ block, want string }{
		{`work_dir = "/tmp", time = "1 hour"`, `job.mf:2:27: setting "time": "1 hour" is not a Slurm time`},
		{`work_dir = "/tmp", mem = "2 GB"`, `setting "mem": "2 GB" is not a Slurm memory size`},
		{`work_dir = "/tmp", sbatch_args = ["--array=0-3"]`, `setting "sbatch_args": --array (in "--array=0-3") is mapflow's to set`},
		{`work_dir = "/tmp", sbatch_args = ["-a0-3"]`, `setting "sbatch_args": -a (in "-a0-3") is mapflow's to set`},
		{`work_dir = "/tmp", sbatch_args = ["--arr=5-6"]`, `setting "sbatch_args": --array (in "--arr=5-6") is mapflow's to set`},
		{`work_dir = "/tmp", sbatch_args = ["--wait"]`, `setting "sbatch_args": --wait (in "--wait") is mapflow's to set`},
		{`work_dir = ""`, `setting "work_dir": must not be empty`},
		{`work_dir = "/tmp", array_parallelism = 0`, `setting "array_parallelism" must be from 1 to 100000`},
		{`time = "10"`, `missing required setting "work_dir"`},
	} {
		if err := check(tc.block); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.block, err, tc.want)
		}
	}
	if err := check(`work_dir = "/tmp", time = "2-00:00:00", mem = "2G", sbatch_args = ["--account=lab", "--qos=short"]`); err != nil {
		t.Errorf("good block: %v", err)
	}
}

// TestPendingRange: squeue's pending ranges name their array tasks.
func TestPendingRange(t *testing.T) {
	live := map[string]element{"12_[3-7%2]": {}, "13_[1,4]": {}}
	for _, tc := range []struct {
		arr  string
		i    int
		want bool
	}{{"12", 3, true}, {"12", 7, true}, {"12", 8, false}, {"13", 4, true}, {"13", 2, false}, {"14", 1, false}} {
		if got := pendingRange(live, tc.arr, tc.i); got != tc.want {
			t.Errorf("%s_%d: %v", tc.arr, tc.i, got)
		}
	}
}

// TestNoSbatch: without Slurm's commands on PATH, Prepare says so, pointing at the env block.
func TestNoSbatch(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	c := &Config{WorkDir: t.TempDir()}
	ps := c.Prepare(context.Background())
	if len(ps) != 1 || ps[0].Key != "" || ps[0].Message != "sbatch is not on PATH" {
		t.Errorf("problems %+v, want sbatch is not on PATH", ps)
	}
}

// TestParseJob: a line of scontrol show job -o, as Slurm 22.05 prints it.
func TestParseJob(t *testing.T) {
	line := "JobId=14 ArrayJobId=13 ArrayTaskId=0 JobName=mapflow-t UserId=root(0) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) ExitCode=0:15 NodeList=vm BatchHost=vm"
	e := parseJob(line)
	if e != (element{id: "13_0", state: "TIMEOUT", reason: "TimeLimit", exit: "0:15", node: "vm"}) {
		t.Errorf("parsed %+v", e)
	}
}
