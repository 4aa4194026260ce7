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

func env(settings map[string]any) *lang.Env {
	e := &lang.Env{Kind: "ec2", Name: "prod", Pos: lang.Pos{Filename: "job.mf", Line: 3, Column: 1}, Settings: map[string]lang.Setting{}}
	line := 4
	for k, v := range settings {
		e.Settings[k] = lang.Setting{Value: v, Pos: lang.Pos{Filename: "job.mf", Line: line, Column: 3}}
		line++
	}
	return e
}

func TestConfigFromEnv(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]any{
		"hosts": int64(3), "s3_path": "s3://my-bucket/a/b/", "ami": "ami-0123", "region": "us-west-2",
		"security_groups": []string{"sg-1", "default"}, "spot": true, "keep_hosts": true,
		"idle_shutdown_timeout": 5 * time.Minute, "tasks_per_claim": int64(20),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hosts != 3 || c.InstanceType != DefaultInstanceType || !c.Spot || !c.KeepHosts || c.IdleShutdown != 5*time.Minute ||
		c.TasksPerClaim != 20 || len(c.SecurityGroups) != 2 || c.Region != "us-west-2" {
		t.Errorf("config %+v", c)
	}
	bucket, prefix, err := ParseS3Path(c.S3Path)
	if bucket != "my-bucket" || prefix != "a/b" || err != nil {
		t.Errorf("ParseS3Path: %q %q %v", bucket, prefix, err)
	}
	if c, err := ConfigFromEnv(env(map[string]any{"s3_path": "s3://my-bucket", "ami": "ami-1"})); err != nil || c.Hosts != 1 {
		t.Errorf("defaults: %+v %v", c, err)
	}

	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"ami": "ami-1"}, "job.mf:3:1: s3_path is required"},
		{map[string]any{"s3_path": "s3://B/x", "ami": "ami-1"}, `:3: "B" is not a valid S3 bucket name`},
		{map[string]any{"s3_path": "s3://a/x", "ami": "ami-1"}, `"a" is not a valid S3 bucket name`},
		{map[string]any{"s3_path": "s3://ok-bucket/x"}, "ami is required"},
		{map[string]any{"s3_path": "s3://ok-bucket", "ami": "ami-1", "hosts": int64(0)}, "hosts must be at least 1"},
	} {
		_, err := ConfigFromEnv(env(tc.settings))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.settings, err, tc.want)
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
