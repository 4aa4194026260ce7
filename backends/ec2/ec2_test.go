package ec2_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2svc "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mapflow/mapflow/backends/ec2"
	"github.com/mapflow/mapflow/backends/ec2/ec2test"
	"github.com/mapflow/mapflow/catalog"
	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/backendtest"
	"github.com/mapflow/mapflow/runtime/remote"
)

// The tests of this package run in a region and bucket of their own, so that another
// package's tests on the same moto (cmd/mapflow's, in us-west-2) never meet their instances.
const (
	region = "eu-west-1"
	bucket = "mapflow-test-ec2"
)

// envBlock is an env block of the tests' region and bucket, with extra settings.
func envBlock(hosts int, extra string) string {
	return fmt.Sprintf(`env ec2 test {
  hosts            = %d
  s3_path          = "s3://%s/jobs"
  region           = %q
  ami              = %q
  instance_type    = "t3.micro"
  instance_profile = %q
%s}`, hosts, bucket, region, ec2test.AMI, ec2test.InstanceProfile, extra)
}

// harness finds moto (or skips), prepares it, builds the binary the hosts run and starts a
// Booter for the test.
type harness struct {
	moto   *ec2test.Moto
	booter *ec2test.Booter
	ec2    *ec2svc.Client
	s3     *s3.Client
	log    *syncBuffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	m := ec2test.Need(t)
	ctx := context.Background()
	bin, err := ec2test.BuildMapflow()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(ec2.WorkerBinaryEnv, bin)
	// The SDK in the driver and in the workers reaches moto through the standard variable.
	t.Setenv("AWS_ENDPOINT_URL", m.Endpoint)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		t.Setenv("AWS_ACCESS_KEY_ID", "testing")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	}
	if err := m.Prepare(ctx, region, bucket); err != nil {
		t.Fatal(err)
	}
	h := &harness{moto: m, log: &syncBuffer{}}
	if h.ec2, err = m.EC2(ctx, region); err != nil {
		t.Fatal(err)
	}
	if h.s3, err = m.S3(ctx, region); err != nil {
		t.Fatal(err)
	}
	h.booter, err = m.Boot(ctx, ec2test.BootOptions{Region: region, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.booter.Stop()
		if t.Failed() {
			for _, host := range h.booter.Hosts() {
				t.Logf("console of %s:\n%s", host.ID, host.Console())
				data, _ := os.ReadFile(filepath.Join(host.Dir, "home", "host.log"))
				t.Logf("host.log of %s:\n%s", host.ID, data)
			}
			t.Logf("backend log:\n%s", h.log.String())
		}
	})
	return h
}

func (h *harness) backend(t *testing.T, env *lang.Env) *ec2.Backend {
	b := backendtest.FromEnv(t, env).(*ec2.Backend)
	b.Log = h.log
	// moto is one Python process that every test of the run shares: poll it gently.
	b.WatchEvery = 500 * time.Millisecond
	b.Threads = confThreads
	return b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The conformance cases run on two hosts of four threads: a host boots before the other,
// and the first must run the cases' few tasks at once alone.
const confHosts, confThreads = 2, 4

func TestConformance(t *testing.T) {
	h := newHarness(t)
	backendtest.Run(t, func(t *testing.T, env *lang.Env) rt.Backend { return h.backend(t, env) }, backendtest.Options{
		Env:             envBlock(confHosts, ""),
		LoseWorker:      func(t *testing.T, b rt.Backend) { h.loseBusyHost(t, "lostworker") },
		SeparateWorkers: true,
		Timeout:         3 * time.Minute,
	})
}

// loseBusyHost terminates, through the EC2 API, a running host of the job that holds a
// claim without results (else any running host), and kills its processes.
func (h *harness) loseBusyHost(t *testing.T, job string) string {
	ctx := context.Background()
	victim := h.busyHost(ctx, job)
	if victim == "" {
		insts, _ := h.booter.Instances(ctx, job)
		for _, in := range insts {
			if in.State != nil && in.State.Name == types.InstanceStateNameRunning {
				victim = aws.ToString(in.InstanceId)
			}
		}
	}
	if victim == "" {
		t.Error("no running host to lose")
		return ""
	}
	t.Logf("losing %s", victim)
	if err := h.booter.Lose(ctx, victim); err != nil {
		t.Error(err)
	}
	return victim
}

// busyHost returns a running host of the job whose worker holds a claim without results,
// or "".
func (h *harness) busyHost(ctx context.Context, job string) string {
	insts, err := h.booter.Instances(ctx, job)
	if err != nil {
		return ""
	}
	for _, in := range insts {
		if in.State == nil || in.State.Name != types.InstanceStateNameRunning {
			continue
		}
		id := aws.ToString(in.InstanceId)
		store := ec2.NewStore(h.s3, bucket, "jobs/"+ec2test.Tag(in, ec2.TagStaging))
		open, _ := remote.OpenClaims(ctx, store)
		for _, w := range open {
			if w == id || strings.HasPrefix(w, id+".") {
				return id
			}
		}
	}
	return ""
}

// writeJob writes a job file (with the env block after the job line) and loads it.
func writeJob(t *testing.T, name, env, body string, files map[string]string) (*lang.Job, *lang.Env) {
	t.Helper()
	dir := t.TempDir()
	for f, text := range files {
		os.WriteFile(filepath.Join(dir, f), []byte(text), 0o755)
	}
	path := filepath.Join(dir, name+".mf")
	os.WriteFile(path, []byte("job "+name+"\n\n"+env+"\n\n"+body), 0o644)
	job, err := lang.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := job.DefaultEnv("")
	if err != nil {
		t.Fatal(err)
	}
	return job, e
}

func openCatalog(t *testing.T) *catalog.Catalog {
	cat, err := catalog.Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

// waitStates waits until every instance of job is in state (or gone from the listing).
func (h *harness) waitStates(t *testing.T, job string, want int, state types.InstanceStateName) []types.Instance {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		insts, err := h.booter.Instances(context.Background(), job)
		if err != nil {
			t.Fatal(err)
		}
		ok := len(insts) == want
		for _, in := range insts {
			ok = ok && in.State != nil && in.State.Name == state
		}
		if ok {
			return insts
		}
		if time.Now().After(deadline) {
			var states []string
			for _, in := range insts {
				states = append(states, aws.ToString(in.InstanceId)+"="+string(in.State.Name))
			}
			t.Fatalf("instances of %s: %v; want %d %s", job, states, want, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// uniqueName makes job names unique per test run: moto keeps the instances of earlier runs.
func uniqueName(base string) string {
	return fmt.Sprintf("%s_%d", base, time.Now().UnixNano()%1e9)
}

// TestTenThousand runs 10,000 expression tasks on three hosts and reports the wall time.
func TestTenThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	h := newHarness(t)
	name := uniqueName("tenk")
	job, env := writeJob(t, name, envBlock(3, ""), "func f(x, y) = x * y + 1\n\nparams map(0..9999, ({x: #, y: 2}))\n\ncombine sum(results)\n", nil)
	cat := openCatalog(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := rt.Run(ctx, cat, h.backend(t, env), job, env, rt.Options{})
	wall := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != rt.Completed || rep.NumTasks != 10000 || rep.Combined != 10000*9999+10000 {
		t.Fatalf("status %s, %d tasks, combined %v", rep.Status, rep.NumTasks, rep.Combined)
	}
	hosts := map[string]int{}
	var first, last time.Time
	err = cat.Tasks(ctx, rep.JobID, func(tk *catalog.Task) error {
		hosts[tk.Host]++
		if first.IsZero() || tk.Start.Before(first) {
			first = tk.Start
		}
		if tk.End.After(last) {
			last = tk.End
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for host := range hosts {
		if !strings.HasPrefix(host, "i-") {
			t.Errorf("task host %q is not an instance id", host)
		}
	}
	t.Logf("10,000 expression tasks on 3 hosts: wall time %s; the first task started after %s, the last ended %s later (tasks per host: %v)",
		wall.Round(time.Millisecond), first.Sub(start).Round(time.Millisecond), last.Sub(first).Round(time.Millisecond), hosts)
	h.waitStates(t, name, 3, types.InstanceStateNameTerminated)
}

// TestPreflight checks the errors given before any instance starts.
func TestPreflight(t *testing.T) {
	h := newHarness(t)
	body := "func f(x) = x\n\nparams [{x: 1}]\n"
	for _, tc := range []struct {
		name  string
		env   string
		setup func(t *testing.T)
		want  string
	}{
		{"nobucket", strings.Replace(envBlock(1, ""), bucket, "mapflow-no-such-bucket", 1), nil,
			`bucket "mapflow-no-such-bucket" does not exist`},
		{"badami", strings.Replace(envBlock(1, ""), ec2test.AMI, "ami-00000000000000bad", 1), nil,
			`ami "ami-00000000000000bad" does not exist in region eu-west-1`},
		{"armami", strings.Replace(envBlock(1, ""), ec2test.AMI, "ami-0e9271c829888680e", 1), nil,
			"is arm64, but the hosts run the linux/amd64 mapflow binary"},
		{"badtype", strings.Replace(envBlock(1, ""), "t3.micro", "t3.enormous", 1), nil,
			`instance_type "t3.enormous" does not exist`},
		{"armtype", strings.Replace(envBlock(1, ""), "t3.micro", "t4g.micro", 1), nil,
			`instance_type "t4g.micro" runs [arm64] code`},
		{"nocreds", envBlock(1, ""), func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", "")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "")
			t.Setenv("AWS_PROFILE", "")
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
		}, "no AWS credentials found"},
		{"badbinary", envBlock(1, ""), func(t *testing.T) { t.Setenv(ec2.WorkerBinaryEnv, "/etc/hostname") },
			"build one with `GOOS=linux GOARCH=amd64 go build ./cmd/mapflow`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			name := uniqueName("pre" + tc.name)
			job, env := writeJob(t, name, tc.env, body, nil)
			rep, err := rt.Run(context.Background(), openCatalog(t), h.backend(t, env), job, env, rt.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one with %q", err, tc.want)
			}
			if rep == nil || rep.Status != rt.Failed {
				t.Errorf("report %+v", rep)
			}
			if !strings.Contains(err.Error(), name+".mf:") && tc.name != "nocreds" && tc.name != "badbinary" {
				t.Errorf("error %q does not point at the job file", err)
			}
			insts, err := ec2test.Instances(context.Background(), h.ec2, name)
			if err != nil || len(insts) != 0 {
				t.Errorf("%d instances started (%v)", len(insts), err)
			}
			t.Logf("%v", rep.JobID)
		})
	}
}

// TestKeepHosts: with keep_hosts the run leaves its instances; each powers off once idle for
// idle_shutdown_timeout.
func TestKeepHosts(t *testing.T) {
	h := newHarness(t)
	name := uniqueName("keep")
	job, env := writeJob(t, name, envBlock(2, "  keep_hosts = true\n  idle_shutdown_timeout = 3s\n"),
		"func f(x) = x * 2\n\nparams [{x: 1}, {x: 2}]\n\ncombine sum(results)\n", nil)
	rep, err := rt.Run(context.Background(), openCatalog(t), h.backend(t, env), job, env, rt.Options{})
	if err != nil || rep.Combined != 6 {
		t.Fatalf("run: %v, %+v", err, rep)
	}
	if !strings.Contains(h.log.String(), "keep_hosts: instances") {
		t.Errorf("the log does not say what was kept:\n%s", h.log.String())
	}
	h.waitStates(t, name, 2, types.InstanceStateNameRunning)
	time.Sleep(time.Second)
	h.waitStates(t, name, 2, types.InstanceStateNameRunning)
	// The hosts power off 3s after their worker ended.
	h.waitStates(t, name, 2, types.InstanceStateNameTerminated)
	for _, host := range h.booter.Hosts() {
		// A host whose worker waited 3s for the other's chunk was idle already.
		if c := host.Console(); !strings.Contains(c, "keep_hosts: staying up for 3s") && !strings.Contains(c, "idle for 3s") {
			t.Errorf("console of %s:\n%s", host.ID, c)
		}
	}
}

// TestLostHost terminates a busy host through the EC2 API: the run marks it lost, the other
// host runs its tasks again (a second attempt), and the job completes.
func TestLostHost(t *testing.T) {
	h := newHarness(t)
	name := uniqueName("losthost")
	job, env := writeJob(t, name, envBlock(2, ""),
		"func f(i) = exec(\"sh\", \"-c\", \"sleep 1; echo $1\", \"sh\", i)\n\nparams map(0..7, ({i: #}))\n\ncombine sum(results)\n", nil)
	cat := openCatalog(t)
	b := h.backend(t, env)
	b.Threads = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lost := make(chan string, 1)
	go func() { lost <- h.loseWhenBusy(ctx, t, name) }()
	rep, err := rt.Run(ctx, cat, b, job, env, rt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != rt.Completed || rep.Combined != 28 {
		t.Fatalf("status %s, combined %v", rep.Status, rep.Combined)
	}
	victim := <-lost
	if victim == "" || !strings.Contains(h.log.String(), "instance "+victim+" is terminated") {
		t.Errorf("victim %q; the log does not say it was lost:\n%s", victim, h.log.String())
	}
	again := 0
	cat.Tasks(context.Background(), rep.JobID, func(tk *catalog.Task) error {
		if tk.Attempt == 2 {
			again++
			if tk.Host == victim {
				t.Errorf("task %d ran again on the lost host", tk.Index)
			}
		}
		return nil
	})
	if again == 0 {
		t.Error("no task ran again after its host was lost")
	}
	t.Logf("lost %s; %d tasks ran again", victim, again)
}

// loseWhenBusy waits for a host of job to hold a claim without results, and loses it.
func (h *harness) loseWhenBusy(ctx context.Context, t *testing.T, job string) string {
	for ctx.Err() == nil {
		if id := h.busyHost(ctx, job); id != "" {
			t.Logf("losing %s", id)
			if err := h.booter.Lose(context.Background(), id); err != nil {
				t.Error(err)
			}
			return id
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ""
}

// TestEveryHostLost: hosts whose worker ends at once, as a broken binary would, are
// replaced once; then the job fails with a message that says so.
func TestEveryHostLost(t *testing.T) {
	h := newHarness(t)
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skip(err)
	}
	t.Setenv(ec2.WorkerBinaryEnv, "/bin/true")
	name := uniqueName("lost")
	job, env := writeJob(t, name, envBlock(2, ""), "func f(x) = x\n\nparams [{x: 1}, {x: 2}]\n", nil)
	rep, err := rt.Run(context.Background(), openCatalog(t), h.backend(t, env), job, env, rt.Options{})
	if err == nil || !strings.Contains(err.Error(), "every instance ended before the job finished") {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(err.Error(), "the worker ended with exit status 0") {
		t.Errorf("the error does not show a host's log: %v", err)
	}
	if rep.Status != rt.Failed {
		t.Errorf("status %s", rep.Status)
	}
	h.waitStates(t, name, 4, types.InstanceStateNameTerminated)
}

// TestStore checks the S3 store's contract on moto: Create refuses a second creator (and of
// many at once exactly one wins), Get of nothing is ErrNotExist, List lists one level, from a name on.
func TestStore(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	s := ec2.NewStore(h.s3, bucket, "store-test/"+uniqueName("s"))
	if err := s.Put(ctx, "a/x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	s.Put(ctx, "a/y", []byte("2"))
	s.Put(ctx, "a/sub/z", []byte("3"))
	names, err := s.List(ctx, "a", "")
	if err != nil || strings.Join(names, ",") != "x,y" {
		t.Errorf("List(a) = %v, %v", names, err)
	}
	if names, err := s.List(ctx, "a", "x"); err != nil || strings.Join(names, ",") != "y" {
		t.Errorf("List(a, after x) = %v, %v", names, err)
	}
	if names, err := s.List(ctx, "none", ""); err != nil || len(names) != 0 {
		t.Errorf("List(none) = %v, %v", names, err)
	}
	if _, err := s.Get(ctx, "a/none"); !isNotExist(err) {
		t.Errorf("Get(a/none): %v", err)
	}
	if data, err := s.Get(ctx, "a/y"); err != nil || string(data) != "2" {
		t.Errorf("Get(a/y) = %q, %v", data, err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Create(ctx, "claims/00000000.1", []byte(fmt.Sprint(i)))
			if err == nil {
				wins.Add(1)
			} else if !isExist(err) {
				t.Errorf("create: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d creators won", wins.Load())
	}
	// A worker opens the store from its URL.
	u := s.URL(region, h.moto.Endpoint)
	w, err := ec2.OpenStore(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := w.Get(ctx, "a/x"); err != nil || string(data) != "1" {
		t.Errorf("via %s: %q %v", u, data, err)
	}
}

// TestEndpointSetting runs a job whose env block names the endpoint, with no
// AWS_ENDPOINT_URL anywhere: the driver, the user-data's AWS CLI and the workers all reach
// moto through the setting.
func TestEndpointSetting(t *testing.T) {
	h := newHarness(t)
	os.Unsetenv("AWS_ENDPOINT_URL") // t.Setenv in newHarness restores it
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_ENDPOINT_URL") {
			env = append(env, kv)
		}
	}
	h.booter.Stop()
	var err error
	h.booter, err = h.moto.Boot(context.Background(), ec2test.BootOptions{Region: region, Env: env, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName("endpoint")
	job, jenv := writeJob(t, name, envBlock(1, fmt.Sprintf("  endpoint = %q\n", h.moto.Endpoint)),
		"func f(x) = x + 1\n\nparams [{x: 1}, {x: 2}]\n\ncombine sum(results)\n", nil)
	rep, err := rt.Run(context.Background(), openCatalog(t), h.backend(t, jenv), job, jenv, rt.Options{})
	if err != nil || rep.Combined != 5 {
		t.Fatalf("run: %v, %+v", err, rep)
	}
	hosts := h.booter.Hosts()
	if len(hosts) != 1 || !strings.Contains(hosts[0].UserData, "endpoint='"+h.moto.Endpoint+"'") {
		t.Errorf("the user-data does not carry the endpoint")
	}
}

// TestNoRegion: without a region in the env block or the SDK's chain, the run says so.
func TestNoRegion(t *testing.T) {
	h := newHarness(t)
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	name := uniqueName("noregion")
	job, env := writeJob(t, name, strings.Replace(envBlock(1, ""), `region           = "eu-west-1"`, "", 1), "func f(x) = x\n\nparams [{x: 1}]\n", nil)
	_, err := rt.Run(context.Background(), openCatalog(t), h.backend(t, env), job, env, rt.Options{})
	if err == nil || !strings.Contains(err.Error(), "no AWS region: set `region` in the env block") {
		t.Errorf("error %v", err)
	}
}

func isNotExist(err error) bool { return err != nil && errors.Is(err, remote.ErrNotExist) }
func isExist(err error) bool    { return err != nil && errors.Is(err, remote.ErrExist) }

// TestWrongCredentials: keys AWS never issued are refused, and the run says so first, before
// anything is staged or launched (a moto of its own that authenticates every request).
func TestWrongCredentials(t *testing.T) {
	url := ec2test.StartAuthenticating(t)
	t.Setenv("AWS_ENDPOINT_URL", url)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAMAPFLOWWRONGKEY1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-of-that-key")
	name := uniqueName("wrongkeys")
	job, env := writeJob(t, name, envBlock(1, ""), "func f(x) = x\n\nparams [{x: 1}]\n", nil)
	cat := openCatalog(t)
	rep, err := rt.Run(context.Background(), cat, backendtest.FromEnv(t, env), job, env, rt.Options{})
	if err == nil || !strings.Contains(err.Error(), "AWS refused the credentials (AuthFailure") ||
		!strings.Contains(err.Error(), "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("error %v; want AWS refusing the credentials", err)
	}
	if rep == nil || rep.Status != rt.Failed || rep.NumDone != 0 {
		t.Errorf("report %+v", rep)
	}
	// The error is recorded, and no key in it.
	row, ferr := cat.FindJob(context.Background(), name)
	if ferr != nil || !strings.Contains(row.Error, "AWS refused the credentials") || strings.Contains(row.Error, "AKIAMAPFLOWWRONGKEY1") {
		t.Errorf("job row error %q (%v)", row.Error, ferr)
	}
}
