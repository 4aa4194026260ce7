package ec2

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mapflow/mapflow/lang"
)

// check checks a job file whose env block holds settings, as mapflow check does.
func check(settings string) (*Config, error) {
	f, err := lang.Parse("job.mf", []byte("env ec2 prod {\n"+settings+"\n}\nfunc f(x) = x\nparams [{x: 1}]\n"))
	if err != nil {
		return nil, err
	}
	j, err := lang.Check(f)
	if err != nil {
		return nil, err
	}
	return j.Envs[0].Options.(*Config), nil
}

func TestSettings(t *testing.T) {
	c, err := check(`hosts = 3, s3_path = "s3://my-bucket/a/b/", ami = "ami-0123", region = "us-west-2"
security_groups = ["sg-1", "default"], spot = true, keep_hosts = true
idle_shutdown_timeout = 5m, tasks_per_claim = 20`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hosts != 3 || c.InstanceType != DefaultInstanceType || !c.Spot || !c.KeepHosts || c.IdleShutdown != 5*time.Minute ||
		c.TasksPerClaim != 20 || len(c.SecurityGroups) != 2 || c.Region != "us-west-2" || c.Env != "prod" {
		t.Errorf("config %+v", c)
	}
	bucket, prefix, err := ParseS3Path(c.S3Path)
	if bucket != "my-bucket" || prefix != "a/b" || err != nil {
		t.Errorf("ParseS3Path: %q %q %v", bucket, prefix, err)
	}
	if c, err := check(`s3_path = "s3://my-bucket", ami = "ami-1"`); err != nil || c.Hosts != 1 {
		t.Errorf("defaults: %+v %v", c, err)
	}

	for _, tc := range []struct {
		settings string
		want     string
	}{
		{`ami = "ami-1"`, `job.mf:1:1: env ec2 prod is missing required setting "s3_path"`},
		{`s3_path = "s3://B/x", ami = "ami-1"`, `job.mf:2:11: setting "s3_path": "B" is not a valid S3 bucket name`},
		{`s3_path = "s3://a/x", ami = "ami-1"`, `"a" is not a valid S3 bucket name`},
		{`s3_path = "s3://ok-bucket/x"`, `missing required setting "ami"`},
		{`s3_path = "s3://ok-bucket", ami = "ami-1", hosts = 0`, `setting "hosts" must be from 1 to 1000, got integer 0`},
		{`s3_path = "s3://ok-bucket", ami = "img-1"`, `setting "ami": "img-1" is not an image id`},
	} {
		_, err := check(tc.settings)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.settings, err, tc.want)
		}
	}
}

// TestUserData checks the rendered script: valid bash, every value quoted, no credential
// nor presigned URL in it.
func TestUserData(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAUSERDATATEST0000")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "userdata/secret/never+here")
	ud, err := userData(hostScript{JobID: "add-1", Staging: "s3://b/p/add-1", Binary: "s3://b/p/bin/x/mapflow",
		Store: "s3://b/p/add-1?region=us-west-2", Region: "us-west-2", Endpoint: "http://x'; rm -rf /", Idle: 60, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"AKIAUSERDATATEST0000", "userdata/secret", "X-Amz-Credential", "X-Amz-Signature", "AWS_SECRET"} {
		if strings.Contains(ud, bad) {
			t.Errorf("user-data holds %q", bad)
		}
	}
	if !strings.Contains(ud, `endpoint='http://x'\''; rm -rf /'`) {
		t.Errorf("endpoint not quoted:\n%s", ud)
	}
	p := filepath.Join(t.TempDir(), "ud")
	os.WriteFile(p, []byte(ud), 0o644)
	if out, err := exec.Command("bash", "-n", p).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
	if len(ud) > 16<<10 {
		t.Errorf("user-data is %d bytes; EC2 takes 16 KiB", len(ud))
	}
}

func TestWorkerBinary(t *testing.T) {
	t.Setenv(WorkerBinaryEnv, "/etc/hostname")
	if _, err := workerBinary(); err == nil || !strings.Contains(err.Error(), "GOOS=linux GOARCH=amd64") {
		t.Errorf("a text file as the binary: %v", err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	sh, _ = filepath.EvalSymlinks(sh)
	t.Setenv(WorkerBinaryEnv, sh)
	if _, err := workerBinary(); err != nil && strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("%s: %v", sh, err)
	}
}
