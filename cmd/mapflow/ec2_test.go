package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mapflow/mapflow/backends/ec2"
	"github.com/mapflow/mapflow/backends/ec2/ec2test"
)

// The commands of the EC2 scripts (testdata/script/ec2_*.txtar), which run against the moto
// server of scripts/moto and play each instance's boot with ec2test (test-only code). A
// script starts with
//
//	[!moto] skip 'no moto server: eval "$(scripts/moto start)"'
//	ec2-moto REGION BUCKET...
//
// The [moto] condition fails the test instead of skipping when MAPFLOW_REQUIRE_EC2=1.
func init() {
	scriptCmds["ec2-moto"] = ec2Moto
	scriptCmds["ec2-boot"] = ec2Boot
	scriptCmds["ec2-instances"] = ec2Instances
	scriptCmds["ec2-noleak"] = ec2NoLeak
}

// ec2Script is what the EC2 commands know of one script.
type ec2Script struct {
	moto    *ec2test.Moto
	region  string
	started time.Time
	booter  *ec2test.Booter
}

var ec2Scripts sync.Map // *testscript.TestScript -> *ec2Script

func ec2State(ts *testscript.TestScript) *ec2Script {
	v, ok := ec2Scripts.Load(ts)
	if !ok {
		ts.Fatalf("run ec2-moto first")
	}
	return v.(*ec2Script)
}

var (
	motoOnce sync.Once
	moto     *ec2test.Moto
	motoErr  error
)

// motoCondition is the scripts' [moto] condition: whether the moto server of scripts/moto
// answers. With MAPFLOW_REQUIRE_EC2=1 its absence is an error, not a skip.
func motoCondition() (bool, error) {
	motoOnce.Do(func() { moto, motoErr = ec2test.Find() })
	if motoErr != nil && os.Getenv(ec2test.RequireEnv) == "1" {
		return false, fmt.Errorf("%s=1 but: %w", ec2test.RequireEnv, motoErr)
	}
	return motoErr == nil, nil
}

// ec2-moto REGION BUCKET...: create the buckets and instance profile on moto, build the
// binary the hosts run, and point the script's environment at them (credentials "testing"
// unless the script set its own). Scripts check [moto] first.
func ec2Moto(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: ec2-moto REGION BUCKET...")
	}
	if ok, err := motoCondition(); !ok {
		ts.Fatalf("no moto server (check [moto] first): %v", err)
	}
	m := moto
	bin, err := ec2test.BuildMapflow()
	ts.Check(err)
	ctx := context.Background()
	ts.Check(m.Prepare(ctx, args[0], args[1:]...))
	ts.Setenv("AWS_ENDPOINT_URL", m.Endpoint)
	ts.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if ts.Getenv("AWS_ACCESS_KEY_ID") == "" {
		ts.Setenv("AWS_ACCESS_KEY_ID", "testing")
		ts.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	}
	ts.Setenv(ec2.WorkerBinaryEnv, bin)
	ec2Scripts.Store(ts, &ec2Script{moto: m, region: args[0], started: time.Now().Add(-time.Second)})
	ts.Defer(func() { ec2Scripts.Delete(ts) })
}

// ec2-boot JOB...: play the boot of the instances of these jobs (tag mapflow:job) until the
// script ends. Their user-data runs with the script's AWS credentials and endpoint.
func ec2Boot(ts *testscript.TestScript, neg bool, args []string) {
	st := ec2State(ts)
	if neg || len(args) == 0 {
		ts.Fatalf("usage: ec2-boot JOB...")
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	dir := ts.MkAbs("hosts")
	ts.Check(os.MkdirAll(dir, 0o755))
	b, err := st.moto.Boot(context.Background(), ec2test.BootOptions{Region: st.region, Env: env, Dir: dir, Jobs: args,
		Logf: func(f string, a ...any) { ts.Logf(f, a...) }})
	ts.Check(err)
	st.booter = b
	ts.Defer(b.Stop)
}

// ec2-instances JOB N STATE: within 30s, exactly N instances of job JOB started by this
// script are listed by DescribeInstances, each in STATE and tagged with the job's id, its
// run's staging, and Name "mapflow JOB".
func ec2Instances(ts *testscript.TestScript, neg bool, args []string) {
	st := ec2State(ts)
	if neg || len(args) != 3 {
		ts.Fatalf("usage: ec2-instances JOB N STATE")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	ctx := context.Background()
	c, err := st.moto.EC2(ctx, st.region)
	ts.Check(err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var insts []types.Instance
		if st.booter != nil {
			insts, err = st.booter.Instances(ctx, args[0])
		} else {
			insts, err = ec2test.Instances(ctx, c, args[0])
		}
		ts.Check(err)
		var got []string
		ok := true
		for _, in := range insts {
			if in.LaunchTime == nil || in.LaunchTime.Before(st.started) {
				continue
			}
			got = append(got, fmt.Sprintf("%s=%s", aws.ToString(in.InstanceId), in.State.Name))
			ok = ok && string(in.State.Name) == args[2]
			if !strings.HasPrefix(ec2test.Tag(in, ec2.TagJobID), args[0]+"-") || ec2test.Tag(in, ec2.TagStaging) == "" ||
				ec2test.Tag(in, "Name") != "mapflow "+args[0] {
				ts.Fatalf("instance %s is not tagged as the job's: %v", aws.ToString(in.InstanceId), in.Tags)
			}
		}
		if ok && len(got) == want {
			ts.Logf("instances of %s: %s", args[0], strings.Join(got, " "))
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("instances of %s: %v; want %d %s", args[0], got, want, args[2])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ec2-noleak BUCKET...: the script's AWS access key id and secret appear nowhere: not in
// any file under $WORK (the catalog and its WAL, saved outputs, each host's user-data,
// console and logs, its copy of the staged files), not in any object of the buckets, and
// not in the user-data EC2 holds for the script's instances.
func ec2NoLeak(ts *testscript.TestScript, neg bool, args []string) {
	st := ec2State(ts)
	if neg {
		ts.Fatalf("unsupported: ! ec2-noleak")
	}
	keys := []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
	var secrets [][]byte
	for _, k := range keys {
		v := ts.Getenv(k)
		if len(v) < 16 {
			ts.Fatalf("set %s to something unmistakable (16 characters or more)", k)
		}
		secrets = append(secrets, []byte(v))
	}
	check := func(where string, data []byte) {
		for i, s := range secrets {
			if bytes.Contains(data, s) {
				ts.Fatalf("%s holds the value of %s", where, keys[i])
			}
		}
	}
	files, size := 0, 0
	work := ts.MkAbs(".")
	ts.Check(filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		check(p, data)
		files++
		size += len(data)
		return nil
	}))
	ctx := context.Background()
	s3c, err := st.moto.S3(ctx, st.region)
	ts.Check(err)
	objects := 0
	for _, bucket := range args {
		p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			ts.Check(err)
			for _, o := range page.Contents {
				out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
				ts.Check(err)
				data, err := io.ReadAll(out.Body)
				out.Body.Close()
				ts.Check(err)
				check("s3://"+bucket+"/"+aws.ToString(o.Key), data)
				objects++
			}
		}
	}
	userData := 0
	if st.booter != nil {
		for _, h := range st.booter.Hosts() {
			check("the user-data of "+h.ID, []byte(h.UserData))
			userData++
		}
	}
	if userData == 0 {
		ts.Fatalf("no instance's user-data was checked")
	}
	ts.Logf("no credential in %d files (%d MB) under $WORK, %d S3 objects, %d user-data", files, size>>20, objects, userData)
}
