package yarn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
)

// The integration test runs on a real cluster, e.g. the one of scripts/hadoop-minicluster:
//
//	eval "$(scripts/hadoop-minicluster start)"; go test ./backends/hadoop/yarn -run Cluster -v
//
// It reads these variables (the script exports them):
//
//	MAPFLOW_YARN_RM                 ResourceManager web address, http://host:port (required)
//	MAPFLOW_HDFS                    NameNode RPC address, host:port (required)
//	MAPFLOW_HADOOP_CONF_DIR         the cluster's conf dir, for the scheduler address
//	MAPFLOW_YARN_SCHEDULER_ADDRESS  the scheduler address, if there is no conf dir
//	MAPFLOW_YARN_NM_LOG_DIR         the NodeManager's log dir, to check the containers' output
//	MAPFLOW_HDFS_USER               HDFS and YARN user (default: the OS user)
//	MAPFLOW_REQUIRE_HADOOP=1        fail instead of skipping when no cluster is configured
//
// The ApplicationMaster is this test binary itself: uploaded to HDFS and started by YARN with
// MAPFLOW_YARN_TEST_AM=1, which TestMain turns into a call of runTestAM.

const envTestAM = "MAPFLOW_YARN_TEST_AM"

func TestMain(m *testing.M) {
	if os.Getenv(envTestAM) == "1" {
		os.Exit(runTestAM())
	}
	os.Exit(m.Run())
}

type clusterEnv struct {
	rm, hdfs, confDir, scheduler, nmLogDir, user string
}

func needCluster(t *testing.T) clusterEnv {
	t.Helper()
	e := clusterEnv{
		rm: os.Getenv("MAPFLOW_YARN_RM"), hdfs: os.Getenv("MAPFLOW_HDFS"),
		confDir: os.Getenv("MAPFLOW_HADOOP_CONF_DIR"), scheduler: os.Getenv("MAPFLOW_YARN_SCHEDULER_ADDRESS"),
		nmLogDir: os.Getenv("MAPFLOW_YARN_NM_LOG_DIR"), user: os.Getenv("MAPFLOW_HDFS_USER"),
	}
	if e.rm == "" || e.hdfs == "" {
		msg := "no Hadoop cluster: set MAPFLOW_YARN_RM and MAPFLOW_HDFS (eval \"$(scripts/hadoop-minicluster start)\")"
		if os.Getenv("MAPFLOW_REQUIRE_HADOOP") == "1" {
			t.Fatal(msg + "; MAPFLOW_REQUIRE_HADOOP=1 forbids skipping")
		}
		t.Skip(msg)
	}
	if e.user == "" {
		e.user = defaultUser()
	}
	if e.confDir != "" {
		conf, err := ReadHadoopConf(e.confDir)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := conf.SchedulerAddress()
		if err != nil {
			t.Fatal(err)
		}
		if e.scheduler != "" && e.scheduler != addr {
			t.Fatalf("MAPFLOW_YARN_SCHEDULER_ADDRESS=%s but %s/yarn-site.xml says %s", e.scheduler, e.confDir, addr)
		}
		e.scheduler = addr
	}
	if e.scheduler == "" {
		t.Fatal("set MAPFLOW_HADOOP_CONF_DIR or MAPFLOW_YARN_SCHEDULER_ADDRESS")
	}
	return e
}

// amMemoryMB is the ApplicationMaster container's size. A Go program reserves about 1.5 GB of
// address space at start, and a NodeManager with its default virtual memory check (limit
// yarn.nodemanager.vmem-pmem-ratio, 2.1, times the container's memory) kills a container whose
// processes reserve more: a Go AM needs about 800 MB there. (The minicluster does not monitor
// containers at all.)
const amMemoryMB = 1024

// TestClusterApplication submits this test binary as an ApplicationMaster that registers,
// runs two shell containers through the NodeManager, and finishes SUCCEEDED.
func TestClusterApplication(t *testing.T) {
	e := needCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	app, rm := submitTestAM(ctx, t, e, amMemoryMB, map[string]string{})

	report, err := rm.Wait(ctx, app, 500*time.Millisecond)
	if err != nil {
		rm.Kill(context.Background(), app)
		t.Fatalf("%v\n%s", err, amLogs(e, app))
	}
	t.Logf("final report: state %s, finalStatus %s, diagnostics %q", report.State, report.FinalStatus, report.Diagnostics)
	if report.State != "FINISHED" || report.FinalStatus != "SUCCEEDED" {
		t.Fatalf("application %s ended %s/%s: %s\n%s", app, report.State, report.FinalStatus, report.Diagnostics, amLogs(e, app))
	}
	if !strings.Contains(report.Diagnostics, "2 containers exited 0") {
		t.Errorf("diagnostics %q do not report the two containers", report.Diagnostics)
	}
	t.Logf("AM log:\n%s", amLogs(e, app))

	if e.nmLogDir == "" {
		t.Log("MAPFLOW_YARN_NM_LOG_DIR not set: containers' stdout not checked")
		return
	}
	outs, _ := filepath.Glob(filepath.Join(e.nmLogDir, app.String(), "container_*", "stdout"))
	sort.Strings(outs)
	hellos := 0
	for _, p := range outs {
		b, _ := os.ReadFile(p)
		cid := filepath.Base(filepath.Dir(p))
		t.Logf("%s/stdout: %q", cid, b)
		if strings.TrimSpace(string(b)) == "hello-from-"+cid {
			hellos++
		}
	}
	if hellos != 2 {
		t.Errorf("%d containers printed hello-from-$CONTAINER_ID, want 2 (stdout files: %v)", hellos, outs)
	}

	// Killing an application that has ended is not an error.
	if err := rm.Kill(ctx, app); err != nil {
		t.Errorf("Kill after the end: %v", err)
	}
}

// TestClusterRESTErrors checks the REST client's errors against the real ResourceManager.
func TestClusterRESTErrors(t *testing.T) {
	e := needCluster(t)
	rm, err := NewRMClient(e.rm, e.user)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = rm.App(ctx, ApplicationID{ClusterTimestamp: 1, ID: 1})
	var re *RESTError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &re) || re.JavaClassName == "" {
		t.Fatalf("App(unknown) = %v, want ErrNotFound with the RemoteException", err)
	}
	t.Logf("unknown app: %v", err)
	n, err := rm.NewApplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.MaxResource.MemoryMB <= 0 || n.MaxResource.VCores <= 0 {
		t.Errorf("new application %+v", n)
	}
	err = rm.Submit(ctx, Submission{ID: n.ID, Name: "mapflow-bad", Resource: Resource{MemoryMB: 1 << 40, VCores: 1},
		AM: LaunchContext{Commands: []string{"true"}}})
	t.Logf("oversized submission: %v", err)
	if err == nil {
		report, _ := rm.Wait(ctx, n.ID, 200*time.Millisecond)
		if report == nil || report.State != "FAILED" {
			t.Errorf("an AM larger than the cluster was accepted: %+v", report)
		}
	}
}

// TestClusterKill submits an ApplicationMaster that only sleeps, kills it and sees it KILLED.
func TestClusterKill(t *testing.T) {
	e := needCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rm, err := NewRMClient(e.rm, e.user)
	if err != nil {
		t.Fatal(err)
	}
	n, err := rm.NewApplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = rm.Submit(ctx, Submission{ID: n.ID, Name: "mapflow-yarn-kill-test", Resource: Resource{MemoryMB: 128, VCores: 1},
		AM: LaunchContext{Commands: []string{"sleep", "120"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Kill(context.Background(), n.ID) })
	for {
		r, err := rm.App(ctx, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		// An AM that never registers keeps the application ACCEPTED.
		if r.State == "ACCEPTED" || r.State == "RUNNING" || r.Terminal() {
			t.Logf("before kill: %s", r.State)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := rm.Kill(ctx, n.ID); err != nil {
		t.Fatal(err)
	}
	r, err := rm.Wait(ctx, n.ID, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after kill: %s/%s: %q", r.State, r.FinalStatus, r.Diagnostics)
	if r.State != "KILLED" || r.FinalStatus != "KILLED" {
		t.Errorf("after Kill: %s/%s, want KILLED/KILLED", r.State, r.FinalStatus)
	}
}

// submitTestAM uploads this test binary to HDFS and submits it as an ApplicationMaster.
func submitTestAM(ctx context.Context, t *testing.T, e clusterEnv, memoryMB int64, env map[string]string) (ApplicationID, *RMClient) {
	t.Helper()
	rm, err := NewRMClient(e.rm, e.user)
	if err != nil {
		t.Fatal(err)
	}
	n, err := rm.NewApplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	app := n.ID
	t.Logf("application %s (cluster max %+v)", app, n.MaxResource)

	fs, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{e.hdfs}, User: e.user})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	dir := "/tmp/mapflow-yarn-test/" + app.String()
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.RemoveAll(dir) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	size, mtime := upload(t, fs, self, dir+"/am")
	url := "hdfs://" + e.hdfs + dir + "/am"
	t.Logf("uploaded %s: %d bytes, modified %d", url, size, mtime)

	amEnv := map[string]string{envTestAM: "1", "MAPFLOW_TEST_SCHEDULER_ADDRESS": e.scheduler}
	for k, v := range env {
		amEnv[k] = v
	}
	err = rm.Submit(ctx, Submission{
		ID: app, Name: "mapflow-yarn-test", MaxAttempts: 1,
		Resource: Resource{MemoryMB: memoryMB, VCores: 1},
		AM: LaunchContext{
			LocalResources: map[string]LocalResource{"am": {URL: url, Size: size, Timestamp: mtime, Type: File, Visibility: VisibilityApplication}},
			Environment:    amEnv,
			Commands:       []string{"./am", "1><LOG_DIR>/stdout", "2><LOG_DIR>/stderr"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r, err := rm.App(context.Background(), app); err == nil && !r.Terminal() {
			rm.Kill(context.Background(), app)
		}
	})
	return app, rm
}

// upload copies a local file to HDFS and returns its length and modification time (ms) as the
// NameNode reports them, which the NodeManager compares when it localizes the file.
func upload(t *testing.T, fs *hdfs.Client, local, remote string) (size, mtime int64) {
	t.Helper()
	f, err := os.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := fs.Create(remote)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, f); err != nil {
		t.Fatal(err)
	}
	// Close fails with a "replication in progress" error until the NameNode has heard from the
	// DataNode about the last block; it is meant to be retried.
	for i := 0; ; i++ {
		err := w.Close()
		if err == nil {
			break
		}
		if !hdfs.IsErrReplicating(err) || i == 100 {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fi, err := fs.Stat(remote)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*hdfs.FileStatus)
	if !ok {
		t.Fatalf("Stat(%s).Sys() is %T", remote, fi.Sys())
	}
	return int64(st.GetLength()), int64(st.GetModificationTime())
}

// amLogs returns the ApplicationMaster's stderr from the NodeManager's log dir, if known.
func amLogs(e clusterEnv, app ApplicationID) string {
	if e.nmLogDir == "" {
		return "(MAPFLOW_YARN_NM_LOG_DIR not set: no AM log)"
	}
	paths, _ := filepath.Glob(filepath.Join(e.nmLogDir, app.String(), "container_*_000001", "stderr"))
	var sb strings.Builder
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		fmt.Fprintf(&sb, "--- %s\n%s", p, b)
	}
	if sb.Len() == 0 {
		return "(no AM log under " + e.nmLogDir + ")"
	}
	return sb.String()
}

// runTestAM is the ApplicationMaster: register, run two containers, finish. Its log is the
// container's stderr.
func runTestAM() int {
	lg := log.New(os.Stderr, "test-am: ", log.Lmicroseconds)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lg.Printf("CONTAINER_ID=%s NM_HOST=%s NM_PORT=%s HADOOP_CONF_DIR=%s %s=%s",
		os.Getenv("CONTAINER_ID"), os.Getenv("NM_HOST"), os.Getenv("NM_PORT"), os.Getenv("HADOOP_CONF_DIR"),
		EnvTokenFile, os.Getenv(EnvTokenFile))
	if b, err := os.ReadFile(os.Getenv(EnvTokenFile)); err == nil && len(b) > 4 {
		lg.Printf("token file: %d bytes, version %d", len(b), b[4])
	}
	tok, err := AMRMTokenFromEnv()
	if err != nil {
		lg.Print(err)
		return 2
	}
	lg.Printf("AMRMToken: kind %s service %s, identifier %d bytes", tok.Kind, tok.Service, len(tok.Identifier))
	addr, err := SchedulerAddressFromEnv()
	if err != nil {
		lg.Printf("scheduler address not in the container's conf (%v); using the submitter's", err)
		addr = os.Getenv("MAPFLOW_TEST_SCHEDULER_ADDRESS")
	} else {
		lg.Printf("scheduler address %s from HADOOP_CONF_DIR (submitter said %s)", addr, os.Getenv("MAPFLOW_TEST_SCHEDULER_ADDRESS"))
	}

	// Errors first: a wrong password, and a heartbeat before Register.
	var problems []string
	bad := tok
	bad.Password = append([]byte("x"), tok.Password[1:]...)
	badAM := NewAMClient(addr, bad)
	_, err = badAM.Register(ctx, RegisterRequest{})
	badAM.Close()
	lg.Printf("register with a wrong password: %v", err)
	if !errors.Is(err, ErrUnauthorized) {
		problems = append(problems, fmt.Sprintf("a wrong password gave %v, want ErrUnauthorized", err))
	}
	am := NewAMClient(addr, tok)
	defer am.Close()
	_, err = am.Allocate(ctx, AllocateRequest{})
	lg.Printf("allocate before register: %v", err)
	if !errors.Is(err, ErrNotRegistered) {
		problems = append(problems, fmt.Sprintf("allocate before register gave %v, want ErrNotRegistered", err))
	}

	host, _ := os.Hostname()
	reg, err := am.Register(ctx, RegisterRequest{Host: host, RPCPort: -1})
	if err != nil {
		lg.Printf("register: %v", err)
		return 1
	}
	lg.Printf("registered: max capability %+v, queue %q", reg.MaxCapability, reg.Queue)

	status, diag := StatusSucceeded, ""
	if diag, err = runTestContainers(ctx, am, lg); err != nil {
		status, diag = StatusFailed, err.Error()
	}
	if len(problems) > 0 {
		status, diag = StatusFailed, strings.Join(append(problems, diag), "; ")
	}
	lg.Printf("finishing %s: %s", status, diag)
	for {
		ok, err := am.Finish(ctx, FinishRequest{Status: status, Diagnostics: diag})
		if err != nil {
			lg.Printf("finish: %v", err)
			return 1
		}
		if ok {
			lg.Print("unregistered")
			return 0
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runTestContainers(ctx context.Context, am *AMClient, lg *log.Logger) (string, error) {
	const want = 2
	asks := []ResourceRequest{{Priority: 1, ResourceName: "*", Capability: Resource{MemoryMB: 128, VCores: 1}, NumContainers: want}}
	var releases []ContainerID
	var responseID int32
	started := map[ContainerID]bool{}
	var done []string
	for len(done) < want {
		resp, err := am.Allocate(ctx, AllocateRequest{ResponseID: responseID, Progress: float32(len(done)) / want, Asks: asks, Releases: releases})
		if err != nil {
			return "", err
		}
		asks, releases, responseID = nil, nil, resp.ResponseID
		if resp.Command == AMShutdown || resp.Command == AMResync {
			return "", fmt.Errorf("the ResourceManager sent AM command %d", resp.Command)
		}
		for _, t := range resp.NMTokens {
			lg.Printf("NMToken for %s: kind %s service %s", t.Node, t.Token.Kind, t.Token.Service)
		}
		for _, c := range resp.Allocated {
			if len(started) == want {
				lg.Printf("releasing surplus %s", c.ID)
				releases = append(releases, c.ID)
				continue
			}
			lg.Printf("allocated %s on %s (%s), %+v, container token service %s", c.ID, c.Node, c.NodeHTTPAddress, c.Resource, c.Token.Service)
			nm, err := am.NodeManager(c.Node)
			if err != nil {
				return "", err
			}
			launch := LaunchContext{Commands: []string{"sh -c 'echo hello-from-$CONTAINER_ID'", "1><LOG_DIR>/stdout", "2><LOG_DIR>/stderr"}}
			if err := nm.StartContainer(ctx, c, launch); err != nil {
				return "", fmt.Errorf("start %s: %w", c.ID, err)
			}
			started[c.ID] = true
			st, failed, err := nm.ContainerStatuses(ctx, c.ID)
			if err != nil || len(failed) > 0 || len(st) != 1 || st[0].ID != c.ID {
				return "", fmt.Errorf("status of %s: %v, %v, %v", c.ID, st, failed, err)
			}
			lg.Printf("started %s, NodeManager says %s", c.ID, st[0].State)
			if len(started) == 1 {
				// Starting it again is refused for this container alone.
				failed, err := nm.StartContainers(ctx, StartContainerRequest{Launch: launch, ContainerToken: c.Token})
				lg.Printf("second start of %s: failures %v, err %v", c.ID, failed, err)
				if err != nil || len(failed) != 1 || failed[0].ID != c.ID {
					return "", fmt.Errorf("second start of %s: failures %v, err %v; want one failure", c.ID, failed, err)
				}
			}
		}
		for _, s := range resp.Completed {
			lg.Printf("completed %s: state %s exit %d diagnostics %q", s.ID, s.State, s.ExitStatus, s.Diagnostics)
			if !started[s.ID] {
				continue
			}
			if s.ExitStatus != 0 {
				return "", fmt.Errorf("container %s exited %d: %s", s.ID, s.ExitStatus, s.Diagnostics)
			}
			done = append(done, s.ID.String())
		}
		if len(done) < want {
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("waiting for containers (%d started, %d done): %w", len(started), len(done), ctx.Err())
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	sort.Strings(done)
	return fmt.Sprintf("%d containers exited 0: %s", len(done), strings.Join(done, ", ")), nil
}
