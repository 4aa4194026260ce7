package hadoop

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mapflow/mapflow/backends/hadoop/yarn"
	"github.com/mapflow/mapflow/runtime/remote"
)

// AMConfig is what `mapflow yarn-am` is told on its command line by the driver.
type AMConfig struct {
	Store      string // hdfs://NAMENODE/dir: the job's staging directory
	Containers int
	MemoryMB   int
	VCores     int
	// Binary is the mapflow binary in HDFS, as a URL with its size and modification time
	// (ms), for YARN to localize into every worker's container.
	Binary      string
	BinarySize  int64
	BinaryMTime int64
	User        string
}

// amPoll is how often the ApplicationMaster heartbeats to the ResourceManager.
const amPoll = 300 * time.Millisecond

// RunAM is the ApplicationMaster: it registers with the ResourceManager, runs `mapflow worker`
// in cfg.Containers containers, starts a replacement for each container that dies (marking it
// lost, so its chunks run again), and unregisters SUCCEEDED once every task has results, or
// FAILED with diagnostics when the workers keep dying. It runs inside the AM's container,
// whose environment carries the AMRMToken and the cluster's configuration.
func RunAM(ctx context.Context, cfg AMConfig, store remote.Store, log io.Writer) error {
	tok, err := yarn.AMRMTokenFromEnv()
	if err != nil {
		return fmt.Errorf("yarn-am: %w", err)
	}
	addr, err := yarn.SchedulerAddressFromEnv()
	if err != nil {
		return fmt.Errorf("yarn-am: the ResourceManager's scheduler address: %w", err)
	}
	am := yarn.NewAMClient(addr, tok)
	defer am.Close()
	host, _ := os.Hostname()
	if _, err := am.Register(ctx, yarn.RegisterRequest{Host: host, RPCPort: -1}); err != nil {
		return fmt.Errorf("yarn-am: register: %w", err)
	}
	status, diag := runWorkers(ctx, am, cfg, store, log)
	fmt.Fprintf(log, "yarn-am: finishing %s: %s\n", status, diag)
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		ok, err := am.Finish(fctx, yarn.FinishRequest{Status: status, Diagnostics: diag})
		if err != nil {
			return fmt.Errorf("yarn-am: finish: %w", err)
		}
		if ok {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runWorkers keeps cfg.Containers workers running until the job is finished, canceled, or
// beyond saving, and says how it ended.
func runWorkers(ctx context.Context, am *yarn.AMClient, cfg AMConfig, store remote.Store, log io.Writer) (yarn.FinalStatus, string) {
	capability := yarn.Resource{MemoryMB: int64(cfg.MemoryMB), VCores: int32(cfg.VCores)}
	maxLost := 2*cfg.Containers + 2
	var (
		responseID int32
		running    = map[yarn.ContainerID]string{} // container -> host/container, as recorded
		asked      int                             // containers asked for, not yet allocated
		exited     int                             // workers that ended with status 0
		lost       []string                        // diagnostics of workers that died
		releases   []yarn.ContainerID
	)
	want := cfg.Containers
	for {
		if remote.Canceled(ctx, store) {
			stopAll(ctx, am, responseID, running)
			return yarn.StatusKilled, "the job was canceled"
		}
		var asks []yarn.ResourceRequest
		if need := want - len(running) - asked; need > 0 {
			asked += need
			asks = []yarn.ResourceRequest{{Priority: 1, ResourceName: "*", Capability: capability, NumContainers: int32(asked)}}
		}
		done := float32(0)
		if cfg.Containers > 0 {
			done = float32(exited) / float32(cfg.Containers)
		}
		resp, err := am.Allocate(ctx, yarn.AllocateRequest{ResponseID: responseID, Progress: done, Asks: asks, Releases: releases})
		if err != nil {
			return yarn.StatusFailed, fmt.Sprintf("heartbeat to the ResourceManager: %v", err)
		}
		responseID, releases = resp.ResponseID, nil
		if resp.Command == yarn.AMShutdown || resp.Command == yarn.AMResync {
			return yarn.StatusFailed, fmt.Sprintf("the ResourceManager sent command %d", resp.Command)
		}
		for _, c := range resp.Allocated {
			if asked > 0 {
				asked--
			}
			if len(running) >= want {
				releases = append(releases, c.ID)
				continue
			}
			if err := startWorker(ctx, am, c, cfg); err != nil {
				fmt.Fprintf(log, "yarn-am: %v\n", err)
				lost = append(lost, err.Error())
				releases = append(releases, c.ID)
				continue
			}
			running[c.ID] = c.Node.Host + "/" + c.ID.String()
			fmt.Fprintf(log, "yarn-am: worker %s started on %s\n", c.ID, c.Node)
		}
		for _, s := range resp.Completed {
			if _, ok := running[s.ID]; !ok {
				continue
			}
			delete(running, s.ID)
			if s.ExitStatus == 0 {
				exited++
				// A worker that ends has nothing left to claim: no replacement.
				want = max(want-1, 0)
				fmt.Fprintf(log, "yarn-am: worker %s done\n", s.ID)
				continue
			}
			msg := fmt.Sprintf("worker %s exited %d: %s", s.ID, s.ExitStatus, strings.TrimSpace(s.Diagnostics))
			fmt.Fprintf(log, "yarn-am: %s\n", msg)
			lost = append(lost, msg)
			if err := remote.MarkLost(ctx, store, s.ID.String()); err != nil {
				return yarn.StatusFailed, fmt.Sprintf("mark %s lost: %v", s.ID, err)
			}
		}
		if len(lost) > maxLost {
			stopAll(ctx, am, responseID, running)
			return yarn.StatusFailed, fmt.Sprintf("%d workers died, giving up; the last: %s", len(lost), lost[len(lost)-1])
		}
		if len(running) == 0 && asked == 0 && want == 0 || len(running) == 0 && exited > 0 {
			finished, err := remote.Finished(ctx, store)
			if err != nil {
				return yarn.StatusFailed, fmt.Sprintf("read the job's results: %v", err)
			}
			if finished {
				return yarn.StatusSucceeded, fmt.Sprintf("%d workers ran the job's tasks", exited)
			}
			// Workers ended while another's claim was still out and that one then died:
			// someone must run its chunks.
			want = 1
		}
		select {
		case <-ctx.Done():
			stopAll(context.Background(), am, responseID, running)
			return yarn.StatusKilled, "the ApplicationMaster was stopped"
		case <-time.After(amPoll):
		}
	}
}

// startWorker starts `mapflow worker` in container c.
func startWorker(ctx context.Context, am *yarn.AMClient, c yarn.Container, cfg AMConfig) error {
	nm, err := am.NodeManager(c.Node)
	if err != nil {
		return fmt.Errorf("reach the NodeManager of %s: %w", c.ID, err)
	}
	launch := yarn.LaunchContext{
		LocalResources: map[string]yarn.LocalResource{"mapflow": {URL: cfg.Binary, Size: cfg.BinarySize,
			Timestamp: cfg.BinaryMTime, Type: yarn.File, Visibility: yarn.VisibilityApplication}},
		Environment: map[string]string{"HADOOP_USER_NAME": cfg.User},
		Commands: []string{"./mapflow", "worker", "--store", cfg.Store, "--id", c.ID.String(),
			"--host", c.Node.Host + "/" + c.ID.String(), "--threads", fmt.Sprint(max(cfg.VCores, 1)),
			"1><LOG_DIR>/stdout", "2><LOG_DIR>/stderr"},
	}
	if err := nm.StartContainer(ctx, c, launch); err != nil {
		return fmt.Errorf("start worker in %s: %w", c.ID, err)
	}
	return nil
}

// stopAll releases the running workers' containers, which stops them; best effort.
func stopAll(ctx context.Context, am *yarn.AMClient, responseID int32, running map[yarn.ContainerID]string) {
	ids := make([]yarn.ContainerID, 0, len(running))
	for id := range running {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	_, _ = am.Allocate(ctx, yarn.AllocateRequest{ResponseID: responseID, Releases: ids})
}
