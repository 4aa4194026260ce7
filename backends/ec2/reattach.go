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
	return remote.Reattach(ctx, b, job, b.cfg.Env, state, tasks, r)
}

var _ rt.Stopper = (*Backend)(nil)

// Stop terminates the instances of a run whose driver is gone, keep_hosts or not: the job is
// being canceled.
func (b *Backend) Stop(ctx context.Context, state []byte) error { return remote.Stop(ctx, b, state) }

// Attach finds the instances of the run a saved runState names, by their tag.
func (b *Backend) Attach(ctx context.Context, job *lang.Job, state []byte) (remote.Launch, error) {
	var st runState
	if err := json.Unmarshal(state, &st); err != nil || st.RunID == "" {
		return nil, nil
	}
	c, err := connect(ctx, st.Region, st.Endpoint)
	if err != nil {
		return nil, err
	}
	store := NewStore(c.s3, st.Bucket, st.Staging)
	name := ""
	if job != nil {
		name = job.Name
	}
	h := &hosts{b: b, cfg: b.cfg, c: c, store: store, bucket: st.Bucket, staging: st.Staging, attached: true}
	h.f = b.newFleet(b.cfg, c, store, st.RunID, name)
	if err := h.f.adopt(ctx); err != nil {
		return nil, fmt.Errorf("find the run's instances: %w", err)
	}
	return h, nil
}

// watchAttached is an error once every instance of an attached run has ended.
func (f *fleet) watchAttached(ctx context.Context) error {
	if time.Since(f.lastLook) < f.every {
		return nil
	}
	f.lastLook = time.Now()
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
