package ec2

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2svc "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/remote"
)

var _ rt.Reattacher = (*Backend)(nil)

// runState is what a new driver needs to re-attach to a run: where it is staged, and how
// its instances are found (by the run's tag).
type runState struct {
	Bucket   string `json:"bucket"`
	Staging  string `json:"staging"` // the key prefix of the run's staging
	RunID    string `json:"run"`     // JOBID/run-TIME, the instances' mapflow:staging tag
	Region   string `json:"region"`
	Endpoint string `json:"endpoint,omitempty"`
}

// Reattach picks up the run of a job whose driver died: its hosts go on without it, and their
// results are in S3. It reports those of the tasks received, waiting for the ones still
// running while any of the run's instances lives, then terminates the instances (unless
// keep_hosts) and runs afresh the tasks the hosts ended without.
func (b *Backend) Reattach(ctx context.Context, job *lang.Job, state []byte, tasks <-chan rt.Task, r rt.Reporter) error {
	var st runState
	if err := json.Unmarshal(state, &st); err != nil || st.RunID == "" {
		return b.Run(ctx, job, tasks, r)
	}
	cfg := b.cfg
	c, err := connect(ctx, st.Region, st.Endpoint)
	if err != nil {
		return fmt.Errorf("re-attach: %w", err)
	}
	store := NewStore(c.s3, st.Bucket, st.Staging)
	f := &fleet{cfg: cfg, c: c, store: store, runID: st.RunID, jobName: job.Name, envName: cfg.Env,
		log: b.Log, every: b.WatchEvery, instances: map[string]*instance{}}
	if f.every <= 0 {
		f.every = DefaultWatchEvery
	}
	if err := f.adopt(ctx); err != nil {
		return fmt.Errorf("re-attach: find the run's instances: %w", err)
	}
	f.logf("re-attaching to the run staged in s3://%s/%s (%d instances)", st.Bucket, st.Staging, len(f.ids()))
	if !cfg.KeepHosts {
		defer f.terminateUnlessDetached(ctx, true)
	}
	var last time.Time
	drv := &remote.Driver{Store: store, Poll: b.Poll, Watch: func(ctx context.Context) error {
		if time.Since(last) < f.every {
			return nil
		}
		last = time.Now()
		if err := f.describe(ctx); err != nil {
			return nil // EC2 may be briefly unreachable; the hosts go on
		}
		for _, id := range f.ids() {
			f.mu.Lock()
			live := !gone(f.instances[id].state)
			f.mu.Unlock()
			if live {
				return nil
			}
		}
		return fmt.Errorf("every instance of the run has ended")
	}}
	missing, err := drv.Collect(ctx, tasks, r)
	if err != nil {
		return fmt.Errorf("re-attach: %w", err)
	}
	if len(missing) == 0 {
		return nil
	}
	f.logf("the run's hosts ended without %d tasks; running them again", len(missing))
	return b.Run(ctx, job, rt.Feed(missing), r)
}

var _ rt.Stopper = (*Backend)(nil)

// Stop terminates the instances of a run whose driver is gone, keep_hosts or not: the job is
// being canceled.
func (b *Backend) Stop(ctx context.Context, state []byte) error {
	var st runState
	if err := json.Unmarshal(state, &st); err != nil || st.RunID == "" {
		return nil
	}
	c, err := connect(ctx, st.Region, st.Endpoint)
	if err != nil {
		return err
	}
	f := &fleet{c: c, runID: st.RunID, log: b.Log, instances: map[string]*instance{}}
	if err := f.adopt(ctx); err != nil {
		return fmt.Errorf("find the run's instances: %w", err)
	}
	return f.terminateAll(ctx)
}

// adopt finds the instances of f's run by their tag, those not terminated.
func (f *fleet) adopt(ctx context.Context) error {
	pages, err := f.describePages(ctx, &ec2svc.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + TagStaging), Values: []string{f.runID}},
	}})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, page := range pages {
		for _, res := range page.Reservations {
			for _, in := range res.Instances {
				if in.State == nil || in.State.Name == types.InstanceStateNameTerminated {
					continue
				}
				id := aws.ToString(in.InstanceId)
				f.instances[id] = &instance{id: id, launched: time.Now(), state: in.State.Name}
			}
		}
	}
	return nil
}
