// Command ec2run times one mapflow job on the EC2 backend against moto (scripts/moto) and
// says where the time went. moto starts no machine, so ec2run plays each instance's boot as
// the EC2 tests do (backends/ec2/ec2test: the instance's own user-data run as a local
// process), while `mapflow run` works as it would against AWS.
//
//	eval "$(scripts/moto start)"
//	ec2run -mapflow bench/out/mapflow -catalog /tmp/c.db -bucket mapflow-examples examples/add_ec2.mf add_ec2
//
// It prints mapflow's standard output, then one line: total_s (submit to results, the whole
// command), staging_s (until the driver logged "ec2: staged": the job and the binary put in
// S3), launch_s (until "ec2: started": RunInstances), run_s (until "ec2: terminated": the
// workers' boots, their tasks, and the driver polling S3 for results) and end_s (the rest:
// the combiner, the catalog, exit).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/mapflow/mapflow/backends/ec2/ec2test"
)

func main() { os.Exit(run()) }

func run() int {
	mapflow := flag.String("mapflow", "mapflow", "the mapflow binary")
	catalog := flag.String("catalog", "", "the catalog file (--catalog)")
	region := flag.String("region", "us-west-2", "the job's region")
	bucket := flag.String("bucket", "mapflow-examples", "the bucket of the job's s3_path")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: ec2run [flags] JOB.mf JOBNAME")
		return 2
	}
	if err := runJob(*mapflow, *catalog, *region, *bucket, flag.Arg(0), flag.Arg(1)); err != nil {
		fmt.Fprintln(os.Stderr, "ec2run:", err)
		return 1
	}
	return 0
}

func runJob(mapflow, catalog, region, bucket, file, name string) error {
	ctx := context.Background()
	m, err := ec2test.Find()
	if err != nil {
		return err
	}
	if err := m.Prepare(ctx, region, bucket); err != nil {
		return fmt.Errorf("prepare moto: %w", err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ACCESS_KEY_ID=" + or(os.Getenv("AWS_ACCESS_KEY_ID"), "testing"),
		"AWS_SECRET_ACCESS_KEY=" + or(os.Getenv("AWS_SECRET_ACCESS_KEY"), "testing")}
	dir, err := os.MkdirTemp("", "mapflow-ec2run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := m.Boot(ctx, ec2test.BootOptions{Region: region, Env: env, Dir: dir, Jobs: []string{name}})
	if err != nil {
		return fmt.Errorf("play the instances' boot: %w", err)
	}
	defer b.Stop()

	args := []string{"run", file}
	if catalog != "" {
		args = append([]string{"--catalog", catalog}, args...)
	}
	cmd := exec.Command(mapflow, args...)
	cmd.Env = append(os.Environ(), env[2:]...)
	cmd.Stdout = os.Stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	var staged, started, terminated time.Duration
	var tail []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		at := time.Since(start)
		switch {
		case strings.HasPrefix(line, "ec2: staged the job"):
			staged = at
		case strings.HasPrefix(line, "ec2: started"):
			started = at
		case strings.HasPrefix(line, "ec2: terminated"):
			terminated = at
		}
		if tail = append(tail, line); len(tail) > 20 {
			tail = tail[1:]
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, strings.Join(tail, "\n"))
	}
	total := time.Since(start)
	if staged == 0 || started == 0 || terminated == 0 {
		return fmt.Errorf("the driver did not log its staging, launch and end:\n%s", strings.Join(tail, "\n"))
	}
	fmt.Printf("ec2run: total_s=%.3f staging_s=%.3f launch_s=%.3f run_s=%.3f end_s=%.3f\n", total.Seconds(),
		staged.Seconds(), (started - staged).Seconds(), (terminated - started).Seconds(), (total - terminated).Seconds())
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
