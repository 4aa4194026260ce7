// Package ec2test is test-only code for the EC2 backend: it finds the moto server the tests
// run against (started by scripts/moto), prepares it (buckets, an instance profile), builds
// the mapflow binary the hosts run, and plays the boot of every instance the backend starts,
// which moto does not do. Nothing outside tests imports it.
//
// A Booter watches DescribeInstances for the job's instances; for each one running it reads
// the instance's own user-data (DescribeInstanceAttribute userData) and runs it with bash as
// a local process, with the test's endpoint and credentials in its environment and
// MAPFLOW_INSTANCE_ID naming the instance (on EC2 the script asks the metadata service). The
// script's end stands for the host powering off: the Booter then terminates the instance, as
// EC2 does for shutdown behavior `terminate`. An instance terminated through the API has its
// processes killed.
package ec2test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ec2svc "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Environment variables the tests read.
const (
	// RequireEnv set to 1 makes a test fail, not skip, when no moto server is running.
	RequireEnv = "MAPFLOW_REQUIRE_EC2"
	// MotoEnv is the moto server's URL (scripts/moto exports it).
	MotoEnv = "MAPFLOW_MOTO"
	// AWSCLIEnv names the aws executable the user-data runs (scripts/moto exports it); the
	// default is `aws` on PATH.
	AWSCLIEnv = "MAPFLOW_MOTO_AWS"
	// InstanceProfile is the instance profile Prepare creates, which test jobs name.
	InstanceProfile = "mapflow-worker"
	// AMI is the x86_64 Amazon Linux image scripts/moto adds to moto's images; the example
	// job files name it.
	AMI = "ami-0123456789abcdef0"
	// hostMarker is set in every played host's environment (and so its tasks'), to find
	// their processes.
	hostMarker = "MAPFLOW_EC2TEST_HOST"
)

// Moto is the moto server of the tests.
type Moto struct {
	Endpoint string // http://127.0.0.1:PORT
	AWSCLI   string // the aws executable the user-data runs
}

// Find returns the moto server that MAPFLOW_MOTO names, once it answers, with the AWS CLI
// the user-data needs.
func Find() (*Moto, error) {
	url := os.Getenv(MotoEnv)
	if url == "" {
		return nil, fmt.Errorf("%s is not set: start moto with `eval \"$(scripts/moto start)\"`", MotoEnv)
	}
	hc := &http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Get(url + "/moto-api/")
	if err != nil {
		return nil, fmt.Errorf("moto at %s does not answer (%v): start it with `eval \"$(scripts/moto start)\"`", url, err)
	}
	resp.Body.Close()
	cli := os.Getenv(AWSCLIEnv)
	if cli == "" {
		if cli, err = exec.LookPath("aws"); err != nil {
			return nil, errors.New("the user-data needs the AWS CLI: none on PATH and MAPFLOW_MOTO_AWS is not set (scripts/moto start installs one)")
		}
	}
	return &Moto{Endpoint: url, AWSCLI: cli}, nil
}

// Need returns the moto server, or skips t when there is none; with MAPFLOW_REQUIRE_EC2=1 it
// fails t instead.
func Need(t testing.TB) *Moto {
	t.Helper()
	m, err := Find()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but: %v", RequireEnv, err)
		}
		t.Skip(err)
	}
	return m
}

// Config is an AWS configuration for the harness's own calls: the moto endpoint, its own
// static credentials (moto takes any) and region.
func (m *Moto) Config(ctx context.Context, region string) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx, config.WithRegion(region), config.WithBaseEndpoint(m.Endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("harness", "harness", "")),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
}

// EC2 returns an EC2 client of region on moto.
func (m *Moto) EC2(ctx context.Context, region string) (*ec2svc.Client, error) {
	cfg, err := m.Config(ctx, region)
	if err != nil {
		return nil, err
	}
	return ec2svc.NewFromConfig(cfg), nil
}

// S3 returns an S3 client of region on moto, path-style.
func (m *Moto) S3(ctx context.Context, region string) (*s3.Client, error) {
	cfg, err := m.Config(ctx, region)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), nil
}

// Prepare creates the buckets (in region) and the instance profile test jobs name, unless
// they exist.
func (m *Moto) Prepare(ctx context.Context, region string, buckets ...string) error {
	c, err := m.S3(ctx, region)
	if err != nil {
		return err
	}
	for _, b := range buckets {
		in := &s3.CreateBucketInput{Bucket: aws.String(b)}
		if region != "us-east-1" {
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
		}
		if _, err := c.CreateBucket(ctx, in); err != nil && !isCode(err, "BucketAlreadyOwnedByYou", "BucketAlreadyExists") {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	// IAM is not among the project's SDK modules; the AWS CLI the user-data needs does it.
	cmd := exec.CommandContext(ctx, m.AWSCLI, "iam", "create-instance-profile", "--instance-profile-name", InstanceProfile)
	cmd.Env = m.cliEnv(region)
	if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "EntityAlreadyExists") {
		return fmt.Errorf("create instance profile %s: %v: %s", InstanceProfile, err, out)
	}
	return nil
}

func (m *Moto) cliEnv(region string) []string {
	return append(os.Environ(), "AWS_ENDPOINT_URL="+m.Endpoint, "AWS_ACCESS_KEY_ID=harness",
		"AWS_SECRET_ACCESS_KEY=harness", "AWS_DEFAULT_REGION="+region, "AWS_REGION="+region)
}

func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		for _, c := range codes {
			if ae.ErrorCode() == c {
				return true
			}
		}
	}
	return false
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// BuildMapflow builds the mapflow command (`go build ./cmd/mapflow`, linux/amd64) once per
// process and returns the binary's path: the hosts run that. Binaries live in
// $TMPDIR/mapflow-ec2test as mapflow-PID; each build removes those of processes gone.
func BuildMapflow() (string, error) {
	buildOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "mapflow-ec2test")
		if buildErr = os.MkdirAll(dir, 0o755); buildErr != nil {
			return
		}
		old, _ := filepath.Glob(filepath.Join(dir, "mapflow-*"))
		for _, p := range old {
			pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(p), "mapflow-"))
			if err == nil && syscall.Kill(pid, 0) != nil {
				os.Remove(p)
			}
		}
		buildPath = filepath.Join(dir, "mapflow-"+strconv.Itoa(os.Getpid()))
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/mapflow/mapflow/cmd/mapflow")
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/mapflow: %v\n%s", err, out)
		}
	})
	return buildPath, buildErr
}

// Host is an instance the Booter played.
type Host struct {
	ID       string
	Dir      string // its directory: user-data, console.log, home/
	UserData string // as EC2 returned it

	cmd    *exec.Cmd
	exited chan struct{}
	killed bool // by the Booter, for a terminated instance: not a poweroff
}

// Console returns what the host's user-data printed.
func (h *Host) Console() string {
	data, _ := os.ReadFile(filepath.Join(h.Dir, "console.log"))
	return string(data)
}

// Booter plays the boot of the instances a test's backend starts.
type Booter struct {
	ec2    *ec2svc.Client
	region string
	env    []string
	dir    string
	jobs   map[string]bool
	logf   func(string, ...any)

	mu     sync.Mutex
	hosts  map[string]*Host
	ignore map[string]bool // instances that existed before the Booter started
	stop   chan struct{}
	done   chan struct{}
}

// BootOptions configure a Booter.
type BootOptions struct {
	Region string
	// Env is the environment of the user-data processes (the test's endpoint and
	// credentials); nil is os.Environ().
	Env []string
	// Dir holds a directory per host.
	Dir string
	// Jobs, when set, limits the Booter to instances tagged mapflow:job with one of these
	// names: tests that run at once in one region then play only their own.
	Jobs []string
	// Logf receives a line per boot and end; nil discards.
	Logf func(string, ...any)
}

// Boot starts a Booter. Instances present before it starts are left alone.
func (m *Moto) Boot(ctx context.Context, o BootOptions) (*Booter, error) {
	c, err := m.EC2(ctx, o.Region)
	if err != nil {
		return nil, err
	}
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	env = setEnv(env, "PATH", filepath.Dir(m.AWSCLI)+string(os.PathListSeparator)+getEnv(env, "PATH"))
	b := &Booter{ec2: c, region: o.Region, env: env, dir: o.Dir, jobs: map[string]bool{}, logf: o.Logf,
		hosts: map[string]*Host{}, ignore: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	if b.logf == nil {
		b.logf = func(string, ...any) {}
	}
	for _, j := range o.Jobs {
		b.jobs[j] = true
	}
	insts, err := b.describe(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe instances on moto: %w", err)
	}
	for _, in := range insts {
		b.ignore[aws.ToString(in.InstanceId)] = true
	}
	go b.loop()
	return b, nil
}

func getEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

// describe lists the pending and running instances of mapflow (of the Booter's jobs). The
// state filter comes first: moto keeps every terminated instance and applies the filters in
// order, and its tag filters cost a scan of every tag per instance (measured: 300-800 ms a
// call with the tag filter first, 8 ms with the state filter first), which slowed every
// other request of the tests.
func (b *Booter) describe(ctx context.Context) ([]types.Instance, error) {
	filters := []types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
		{Name: aws.String("tag-key"), Values: []string{"mapflow:staging"}},
	}
	if len(b.jobs) > 0 {
		var names []string
		for j := range b.jobs {
			names = append(names, j)
		}
		filters = append(filters, types.Filter{Name: aws.String("tag:mapflow:job"), Values: names})
	}
	return describeAll(ctx, b.ec2, &ec2svc.DescribeInstancesInput{Filters: filters})
}

// describeAll runs DescribeInstances through every page and returns the instances.
func describeAll(ctx context.Context, c *ec2svc.Client, in *ec2svc.DescribeInstancesInput) ([]types.Instance, error) {
	var out []types.Instance
	p := ec2svc.NewDescribeInstancesPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	return out, nil
}

func (b *Booter) loop() {
	defer close(b.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-b.stop
		cancel()
	}()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		insts, err := b.describe(ctx)
		if err != nil {
			if ctx.Err() == nil {
				b.logf("ec2test: describe instances: %v", err)
			}
			continue
		}
		live := map[string]bool{}
		for _, in := range insts {
			id := aws.ToString(in.InstanceId)
			live[id] = true
			if b.ignore[id] {
				continue
			}
			b.mu.Lock()
			h := b.hosts[id]
			b.mu.Unlock()
			if h == nil {
				if err := b.boot(ctx, id); err != nil && ctx.Err() == nil {
					b.logf("ec2test: boot %s: %v", id, err)
				}
			}
		}
		// An instance no longer pending or running was terminated (or stopped): its
		// processes end with it.
		for _, h := range b.Hosts() {
			if !live[h.ID] {
				b.kill(h)
			}
		}
	}
}

// boot runs an instance's user-data.
func (b *Booter) boot(ctx context.Context, id string) error {
	out, err := b.ec2.DescribeInstanceAttribute(ctx, &ec2svc.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameUserData})
	if err != nil {
		return err
	}
	var script []byte
	if out.UserData != nil && out.UserData.Value != nil {
		if script, err = base64.StdEncoding.DecodeString(aws.ToString(out.UserData.Value)); err != nil {
			return fmt.Errorf("user-data is not base64: %w", err)
		}
	}
	dir := filepath.Join(b.dir, id)
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o700); err != nil {
		return err
	}
	// One request at a time for the host's `aws s3 cp` (it runs ten by default): moto is one
	// Python process, and ten ranged GETs of the 80 MB binary slow every other request of
	// the test while they last, which AWS's S3 would not.
	awsDir := filepath.Join(dir, ".aws")
	if err := os.MkdirAll(awsDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(awsDir, "config"), []byte("[default]\ns3 =\n  max_concurrent_requests = 1\n"), 0o600); err != nil {
		return err
	}
	path := filepath.Join(dir, "user-data")
	if err := os.WriteFile(path, script, 0o700); err != nil {
		return err
	}
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		return err
	}
	h := &Host{ID: id, Dir: dir, UserData: string(script), exited: make(chan struct{})}
	h.cmd = exec.Command("bash", path)
	h.cmd.Dir = dir
	h.cmd.Env = append(append([]string(nil), b.env...), "MAPFLOW_INSTANCE_ID="+id,
		"MAPFLOW_HOME="+filepath.Join(dir, "home"), "HOME="+dir, hostMarker+"="+id)
	h.cmd.Stdout, h.cmd.Stderr = console, console
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		console.Close()
		return err
	}
	b.mu.Lock()
	b.hosts[id] = h
	b.mu.Unlock()
	b.logf("ec2test: booted %s (pid %d)", id, h.cmd.Process.Pid)
	go func() {
		err := h.cmd.Wait()
		console.Close()
		close(h.exited)
		b.mu.Lock()
		killed := h.killed
		b.mu.Unlock()
		if killed {
			return
		}
		// The script's end is the host's poweroff; shutdown behavior `terminate` ends it.
		b.logf("ec2test: %s powered off (%v)", id, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := b.ec2.TerminateInstances(ctx, &ec2svc.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
			b.logf("ec2test: terminate %s after its poweroff: %v", id, err)
		}
	}()
	return nil
}

// kill ends a host's processes: the user-data's process group, then any process left with
// the host's mark in its environment (tasks run in process groups of their own).
func (b *Booter) kill(h *Host) {
	b.mu.Lock()
	if h.killed {
		b.mu.Unlock()
		return
	}
	h.killed = true
	b.mu.Unlock()
	select {
	case <-h.exited:
		killMarked(hostMarker + "=" + h.ID) // tasks of a worker that did not wait for them
	default:
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.exited
		killMarked(hostMarker + "=" + h.ID)
		b.logf("ec2test: killed the processes of %s", h.ID)
	}
}

// killMarked kills every process whose environment holds mark.
func killMarked(mark string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == mark {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
}

// Lose terminates instance id through the EC2 API and kills its processes at once, as a host
// that dies does.
func (b *Booter) Lose(ctx context.Context, id string) error {
	b.mu.Lock()
	h := b.hosts[id]
	b.mu.Unlock()
	if h != nil {
		b.kill(h)
	}
	_, err := b.ec2.TerminateInstances(ctx, &ec2svc.TerminateInstancesInput{InstanceIds: []string{id}})
	return err
}

// Hosts returns the hosts played so far, by id.
func (b *Booter) Hosts() []*Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*Host, 0, len(b.hosts))
	for _, h := range b.hosts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Running returns the hosts whose user-data still runs.
func (b *Booter) Running() []*Host {
	var out []*Host
	for _, h := range b.Hosts() {
		select {
		case <-h.exited:
		default:
			out = append(out, h)
		}
	}
	return out
}

// Stop stops watching and kills the processes of every host still running.
func (b *Booter) Stop() {
	select {
	case <-b.stop:
		return
	default:
	}
	close(b.stop)
	<-b.done
	for _, h := range b.Hosts() {
		b.kill(h)
	}
}

// Instances returns the instances of job (tag mapflow:job) that the Booter played, as
// DescribeInstances lists them now: by id, which moto answers at once.
func (b *Booter) Instances(ctx context.Context, job string) ([]types.Instance, error) {
	var ids []string
	for _, h := range b.Hosts() {
		ids = append(ids, h.ID)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	all, err := describeAll(ctx, b.ec2, &ec2svc.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		return nil, err
	}
	var out []types.Instance
	for _, in := range all {
		if Tag(in, "mapflow:job") == job {
			out = append(out, in)
		}
	}
	return out, nil
}

// Instances returns the instances tagged mapflow:job=job in region, as DescribeInstances
// lists them. moto takes long to filter by tag (every instance it ever had, every tag): use
// Booter.Instances where it serves.
func Instances(ctx context.Context, c *ec2svc.Client, job string) ([]types.Instance, error) {
	return describeAll(ctx, c, &ec2svc.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("tag:mapflow:job"), Values: []string{job}}}})
}

// Tag returns an instance's tag value.
func Tag(in types.Instance, key string) string {
	for _, t := range in.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// PythonEnv names the python that runs moto (scripts/moto exports it).
const PythonEnv = "MAPFLOW_MOTO_PYTHON"

// StartAuthenticating starts a moto server of t's own on a free loopback port, one that checks
// every request's credentials against its IAM (INITIAL_NO_AUTH_ACTION_COUNT=0), so that keys
// it never issued are refused as AWS refuses them. It returns the server's URL and stops the
// server when t ends; without the python of scripts/moto it skips t (or fails it, as Need).
func StartAuthenticating(t testing.TB) string {
	t.Helper()
	Need(t)
	py := os.Getenv(PythonEnv)
	if py == "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but %s is not set: start moto with `eval \"$(scripts/moto start)\"`", RequireEnv, PythonEnv)
		}
		t.Skipf("%s is not set: start moto with `eval \"$(scripts/moto start)\"`", PythonEnv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logPath := filepath.Join(t.TempDir(), "moto.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(py, "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "INITIAL_NO_AUTH_ACTION_COUNT=0")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start an authenticating moto: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := hc.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			t.Fatalf("the authenticating moto at %s did not answer in 30 s: %v\n%s", url, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
