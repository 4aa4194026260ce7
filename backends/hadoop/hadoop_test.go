package hadoop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/backendtest"
)

// The cluster tests run against the cluster of scripts/hadoop-minicluster, whose `start`
// prints the variables read here. Without them the tests skip, unless
// MAPFLOW_REQUIRE_HADOOP=1 (CI) makes that a failure.
func cluster(t *testing.T) (confDir, hdfs string) {
	confDir, hdfs = os.Getenv("MAPFLOW_HADOOP_CONF_DIR"), os.Getenv("MAPFLOW_HDFS")
	if confDir == "" || hdfs == "" {
		if os.Getenv("MAPFLOW_REQUIRE_HADOOP") == "1" {
			t.Fatal("MAPFLOW_REQUIRE_HADOOP=1 but no cluster: run eval \"$(scripts/hadoop-minicluster start)\"")
		}
		t.Skip("no Hadoop cluster: eval \"$(scripts/hadoop-minicluster start)\" to run these tests")
	}
	return confDir, hdfs
}

// TestMain builds the mapflow binary that the containers run: the test binary is not it.
func TestMain(m *testing.M) {
	backendtest.MainWithWorker(m, os.Getenv("MAPFLOW_HDFS") != "", "../../cmd/mapflow")
}

func TestConformance(t *testing.T) {
	confDir, hdfs := cluster(t)
	env := fmt.Sprintf("env hadoop test {\n  containers = 2\n  container_vcores = 3\n  container_memory_mb = 256\n"+
		"  dist_path = \"hdfs://%s/tmp/mapflow-test\"\n  hadoop_conf_dir = %q\n}", hdfs, confDir)
	backendtest.Run(t, func(t *testing.T, env *lang.Env) rt.Backend { return backendtest.FromEnv(t, env) }, backendtest.Options{
		Env:             env,
		Timeout:         3 * time.Minute,
		LoseWorker:      loseWorker,
		SeparateWorkers: true,
	})
}

// loseWorker kills one worker process of the backend's application, as a machine that dies
// would: kill -9, no goodbye.
func loseWorker(t *testing.T, b rt.Backend) {
	app := b.(*Backend).App().String()
	prefix := "container_" + strings.TrimPrefix(app, "application_") + "_"
	out, _ := exec.Command("pgrep", "-f", "^./mapflow worker .*--id "+prefix).Output()
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil {
			t.Logf("killing worker pid %d of %s", pid, app)
			syscall.Kill(pid, syscall.SIGKILL)
			return
		}
	}
	t.Errorf("no worker process of %s to kill", app)
}

// The staged job (its script, params, shipped files and results) is readable by its owner
// only.
func TestStagingIsPrivate(t *testing.T) {
	confDir, hdfs := cluster(t)
	src := fmt.Sprintf("job private\nenv hadoop { containers = 1, container_memory_mb = 256, dist_path = \"hdfs://%s/tmp/mapflow-private\", hadoop_conf_dir = %q }\n"+
		"func add(x, y) = x + y\nparams [{x: 1, y: 2}]\n", hdfs, confDir)
	job, env, cat := backendtest.Load(t, src, nil)
	rep, err := rt.Run(context.Background(), cat, backendtest.FromEnv(t, env), job, env, rt.Options{})
	if err != nil || rep.Status != rt.Completed {
		t.Fatalf("run: %v, %+v", err, rep)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	store, err := OpenStore(hdfs, me.Username, "/")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, p := range []string{"/tmp/mapflow-private/" + rep.JobID} {
		fi, err := store.Client().Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700", p, fi.Mode().Perm())
		}
		runs, err := store.Client().ReadDir(p)
		if err != nil || len(runs) != 1 {
			t.Fatalf("runs under %s: %v, %v", p, runs, err)
		}
		if m := runs[0].Mode().Perm(); m != 0o700 {
			t.Errorf("%s/%s has mode %v, want 0700", p, runs[0].Name(), m)
		}
	}
}
