package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mapflow/mapflow/backends/hadoop"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mapflow": func() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI scripts in testdata/script: each is what a user types, with the
// job files inline, against a catalog of its own.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	hadoopEnv := hadoopSetup(t)
	slurmEnv := slurmSetup(t, hadoopEnv)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds:                scriptCmds,
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "hadoop":
				return hadoopEnv != nil, nil
			case "rm8088": // the ResourceManager's web address is on its default port
				return hadoopEnv["MAPFLOW_YARN_RM"] == "http://127.0.0.1:8088", nil
			case "root":
				return os.Geteuid() == 0, nil
			case "moto":
				return motoCondition()
			case "slurm":
				return slurmEnv != nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("MAPFLOW_CATALOG", filepath.Join(env.WorkDir, "catalog.db"))
			env.Setenv("EXAMPLES", examples)
			for k, v := range hadoopEnv {
				env.Setenv(k, v)
			}
			for k, v := range slurmEnv {
				env.Setenv(k, v)
			}
			return nil
		},
	})
}

// hadoopSetup returns the environment the Hadoop scripts need when a cluster is configured
// (see scripts/hadoop-minicluster), with a mapflow binary built for the containers: the test
// binary that plays mapflow here cannot run there. Without a cluster it returns nil, unless
// MAPFLOW_REQUIRE_HADOOP=1 makes that a failure.
func hadoopSetup(t *testing.T) map[string]string {
	conf := os.Getenv("MAPFLOW_HADOOP_CONF_DIR")
	if conf == "" {
		if os.Getenv("MAPFLOW_REQUIRE_HADOOP") == "1" {
			t.Fatal("MAPFLOW_REQUIRE_HADOOP=1 but no cluster: eval \"$(scripts/hadoop-minicluster start)\"")
		}
		return nil
	}
	bin := filepath.Join(t.TempDir(), "mapflow")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build mapflow for the containers: %v\n%s", err, out)
	}
	return map[string]string{"HADOOP_CONF_DIR": conf, hadoop.EnvWorkerBinary: bin, "USER": os.Getenv("USER"),
		"MAPFLOW_YARN_RM": os.Getenv("MAPFLOW_YARN_RM"), "MAPFLOW_HDFS": os.Getenv("MAPFLOW_HDFS")}
}

// slurmSetup returns the environment the Slurm scripts need when a cluster runs (see
// scripts/slurm-cluster), with a mapflow binary for the array tasks (the Hadoop one, when
// hadoopEnv has it). Without a cluster it returns nil, unless MAPFLOW_REQUIRE_SLURM=1 makes
// that a failure.
func slurmSetup(t *testing.T, hadoopEnv map[string]string) map[string]string {
	conf, work := os.Getenv("SLURM_CONF"), os.Getenv("MAPFLOW_SLURM_WORK_DIR")
	if conf == "" || work == "" {
		if os.Getenv("MAPFLOW_REQUIRE_SLURM") == "1" {
			t.Fatal("MAPFLOW_REQUIRE_SLURM=1 but no cluster: eval \"$(scripts/slurm-cluster start)\"")
		}
		return nil
	}
	bin := hadoopEnv[hadoop.EnvWorkerBinary]
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "mapflow")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("build mapflow for the array tasks: %v\n%s", err, out)
		}
	}
	return map[string]string{"SLURM_CONF": conf, "MAPFLOW_SLURM_WORK_DIR": work, hadoop.EnvWorkerBinary: bin}
}
