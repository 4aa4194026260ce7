package ec2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2svc "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mapflow/mapflow/lang"
	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/remote"
)

var _ rt.Backend = (*Backend)(nil)

// DefaultWatchEvery is how often a run describes its instances.
const DefaultWatchEvery = 2 * time.Second

// Backend is the EC2 backend.
type Backend struct {
	cfg Config
	// Log receives a line for each step a user may want to see (staging, instances started,
	// lost and terminated); nil discards them. Nothing written there holds a credential.
	Log io.Writer
	// Poll is how often the driver looks for results in S3; 0 is remote.DefaultPoll.
	Poll time.Duration
	// WatchEvery is how often the instances are described; 0 is DefaultWatchEvery.
	WatchEvery time.Duration
	// Threads is how many tasks each host runs at once; 0 is one per CPU of the host.
	Threads int
}

// New returns an EC2 backend. A Config without S3Path takes its settings from the env block
// a job runs in.
func New(cfg Config) *Backend { return &Backend{cfg: cfg} }

// Run stages the job under s3_path, starts the hosts, hands the tasks to their workers
// through the staging protocol and reports the results; the hosts are terminated when it
// returns, unless keep_hosts. Everything that can be checked before an instance starts is.
func (b *Backend) Run(ctx context.Context, job *lang.Job, tasks <-chan rt.Task, r rt.Reporter) error {
	return remote.Run(ctx, b, job, b.cfg.Env, tasks, r)
}

// Logf reports a step, prefixed with "ec2: ".
func (b *Backend) Logf(format string, args ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, "ec2: "+format+"\n", args...)
	}
}

// hosts is a run: the instances of the fleet and the run's staging under s3_path.
type hosts struct {
	b        *Backend
	cfg      Config
	c        *clients
	f        *fleet
	store    *Store
	bucket   string
	prefix   string // s3_path's
	staging  string // the run's key prefix
	vcpus    int
	exec     bool // the job runs programs
	attached bool // found again by Attach: watched, not replaced
}

// Launch checks the credentials, the bucket, the binary, the image and the instance type,
// and asks EC2 for a dry run of the launch, before anything is staged.
func (b *Backend) Launch(ctx context.Context, job *lang.Job, jobID, run string) (remote.Launch, error) {
	cfg := b.cfg
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bucket, prefix, _ := ParseS3Path(cfg.S3Path)
	c, err := connect(ctx, cfg.Region, cfg.Endpoint)
	if err != nil {
		return nil, cfg.at("region", "%v", err)
	}
	if err := checkCredentials(ctx, c); err != nil {
		return nil, err
	}
	if err := checkBucket(ctx, c, cfg, bucket); err != nil {
		return nil, err
	}
	if _, err := workerBinary(); err != nil {
		return nil, err
	}
	if err := checkImage(ctx, c, cfg); err != nil {
		return nil, err
	}
	vcpus, err := checkInstanceType(ctx, c, cfg)
	if err != nil {
		return nil, err
	}
	staging := joinKey(prefix, run)
	store := NewStore(c.s3, bucket, staging)
	h := &hosts{b: b, cfg: cfg, c: c, store: store, bucket: bucket, prefix: prefix, staging: staging, vcpus: vcpus, exec: job.Func.IsExec()}
	h.f = b.newFleet(cfg, c, store, run, job.Name)
	h.f.jobID = jobID
	// The dry run asks EC2 to check the whole request (image, type, subnet, groups, key, profile
	// and the right to launch) before anything is staged.
	if err := dryRun(ctx, h.f); err != nil {
		return nil, err
	}
	if cfg.InstanceProfile == "" && c.endpoint == "" {
		b.Logf("warning: no instance_profile: the hosts have no credentials for %s unless its bucket policy lets them in", cfg.S3Path)
	}
	return h, nil
}

func (b *Backend) newFleet(cfg Config, c *clients, store remote.Store, run, jobName string) *fleet {
	f := &fleet{cfg: cfg, c: c, store: store, runID: run, jobName: jobName, envName: cfg.Env,
		log: b.Log, every: b.WatchEvery, instances: map[string]*instance{}}
	if f.every <= 0 {
		f.every = DefaultWatchEvery
	}
	return f
}

func (h *hosts) Store() remote.Store { return h.store }

func (h *hosts) String() string {
	if ids := h.f.ids(); len(ids) > 0 {
		return "instances " + strings.Join(ids, " ")
	}
	return "the hosts of s3://" + h.bucket + "/" + h.staging
}

// Tune runs a task per vCPU of the instance type on each host (or Threads), and cuts small
// batches of tasks into that many chunks in all, so that a few tasks spread over every host.
func (h *hosts) Tune(d *remote.Driver) {
	threads := h.b.Threads
	if threads <= 0 {
		threads = h.vcpus
	}
	chunk := h.cfg.TasksPerClaim
	if chunk == 0 && h.exec {
		// A program typically runs for seconds or hours: one per claim spreads a few over
		// every host, and each result reaches the catalog as it finishes (a worker writes a
		// claim's results when its last task ends).
		chunk = 1
	}
	d.ChunkSize, d.Workers, d.Threads, d.Poll = chunk, h.cfg.Hosts*max(threads, 1), h.b.Threads, h.b.Poll
}

func (h *hosts) State() []byte {
	st, _ := json.Marshal(runState{Bucket: h.bucket, Staging: h.staging, RunID: h.f.runID, Region: h.c.region, Endpoint: h.cfg.Endpoint})
	return st
}

// StartWorkers stages the binary (once per build, under s3_path/bin/) and launches the hosts,
// whose user-data starts the worker.
func (h *hosts) StartWorkers(ctx context.Context, bin string) error {
	cfg := h.cfg
	digest, err := rt.FileSHA256(bin)
	if err != nil {
		return fmt.Errorf("read the mapflow binary: %w", err)
	}
	binKey := joinKey(h.prefix, "bin/"+digest[:16]+"/mapflow")
	if err := uploadFile(ctx, h.c.s3, h.bucket, binKey, bin); err != nil {
		return fmt.Errorf("stage the mapflow binary: %w", err)
	}
	idle := cfg.IdleShutdown
	if idle == 0 {
		idle = DefaultIdleShutdown
	}
	h.f.userData, err = userData(hostScript{
		JobID:    h.f.runID,
		Staging:  "s3://" + h.bucket + "/" + h.staging,
		Binary:   "s3://" + h.bucket + "/" + binKey,
		Store:    h.store.URL(h.c.region, cfg.Endpoint),
		Region:   h.c.region,
		Endpoint: cfg.Endpoint,
		Idle:     seconds(idle),
		Keep:     cfg.KeepHosts,
		KeepFor:  seconds(cfg.IdleShutdown),
	})
	if err != nil {
		return err
	}
	h.b.Logf("staged the job in s3://%s/%s", h.bucket, h.staging)
	return h.f.launch(ctx, cfg.Hosts)
}

// Watch describes the instances: a run's watch replaces hosts that are lost; an attached
// run's only says when every one has ended.
func (h *hosts) Watch(ctx context.Context) error {
	if h.attached {
		return h.f.watchAttached(ctx)
	}
	return h.f.watch(ctx)
}

// Finish terminates the hosts, unless keep_hosts.
func (h *hosts) Finish(context.Context) error { return h.Stop(context.Background(), false) }

// Stop terminates the hosts; with keep_hosts, unless force, it leaves them running and says
// how to end them.
func (h *hosts) Stop(ctx context.Context, force bool) error {
	if h.cfg.KeepHosts && !force {
		ids := strings.Join(h.f.ids(), " ")
		if ids == "" {
			return nil
		}
		when := "stay up until terminated"
		if h.cfg.IdleShutdown > 0 {
			when = fmt.Sprintf("power off %s after their worker ends", h.cfg.IdleShutdown)
		}
		h.b.Logf("keep_hosts: instances %s %s; end them with: aws ec2 terminate-instances --region %s --instance-ids %s",
			ids, when, h.c.region, ids)
		return nil
	}
	if force {
		return h.f.terminateAll(ctx)
	}
	h.f.terminate()
	return nil
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "/" + name
}

// checkBucket makes sure the staging bucket exists and these credentials may use it.
func checkBucket(ctx context.Context, c *clients, cfg Config, bucket string) error {
	_, err := c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		return nil
	}
	if isCredentialsError(err) {
		return fmt.Errorf("AWS refused the credentials: %s", apiMessage(err))
	}
	switch httpStatus(err) {
	case http.StatusNotFound:
		return cfg.at("s3_path", "bucket %q does not exist (region %s): create it, e.g. `aws s3 mb s3://%s --region %s`, or fix s3_path",
			bucket, c.region, bucket, c.region)
	case http.StatusForbidden:
		return cfg.at("s3_path", "bucket %q: access denied to these credentials (or it is another account's bucket)", bucket)
	case http.StatusMovedPermanently, http.StatusBadRequest:
		if r := responseHeader(err, "X-Amz-Bucket-Region"); r != "" && r != c.region {
			return cfg.at("region", "bucket %q is in region %s, not %s: set region = %q", bucket, r, c.region, r)
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return cfg.at("s3_path", "bucket %q: %v", bucket, err)
}

// checkImage makes sure the AMI exists, is available and is x86_64, as the binary is. When
// the credentials may not describe images, the dry run checks what it can.
func checkImage(ctx context.Context, c *clients, cfg Config) error {
	out, err := c.ec2.DescribeImages(ctx, &ec2svc.DescribeImagesInput{ImageIds: []string{cfg.AMI}})
	if err != nil {
		if strings.HasPrefix(apiCode(err), "InvalidAMIID") {
			return cfg.at("ami", "ami %q does not exist in region %s (%s): AMI ids differ between regions; find one with `aws ec2 describe-images --region %s --owners amazon --filters 'Name=name,Values=al2023-ami-2023*-x86_64'`",
				cfg.AMI, c.region, apiCode(err), c.region)
		}
		if isCredentialsError(err) {
			return fmt.Errorf("AWS refused the credentials: %s", apiMessage(err))
		}
		return nil // e.g. not allowed to describe images
	}
	if len(out.Images) == 0 {
		return cfg.at("ami", "ami %q does not exist in region %s, or is not shared with this account", cfg.AMI, c.region)
	}
	img := out.Images[0]
	if img.Architecture != "" && img.Architecture != types.ArchitectureValuesX8664 {
		return cfg.at("ami", "ami %q (%s) is %s, but the hosts run the linux/amd64 mapflow binary: pick an x86_64 image",
			cfg.AMI, aws.ToString(img.Name), img.Architecture)
	}
	if img.Platform == types.PlatformValuesWindows {
		return cfg.at("ami", "ami %q (%s) is a Windows image: pick a Linux image with the AWS CLI, like Amazon Linux 2023", cfg.AMI, aws.ToString(img.Name))
	}
	if img.State != "" && img.State != types.ImageStateAvailable {
		return cfg.at("ami", "ami %q is %s, not available", cfg.AMI, img.State)
	}
	return nil
}

// checkInstanceType makes sure the instance type exists and runs x86_64 code, and returns its
// vCPUs (2 when the credentials may not describe it).
func checkInstanceType(ctx context.Context, c *clients, cfg Config) (int, error) {
	out, err := c.ec2.DescribeInstanceTypes(ctx, &ec2svc.DescribeInstanceTypesInput{
		InstanceTypes: []types.InstanceType{types.InstanceType(cfg.InstanceType)},
	})
	if err != nil {
		if apiCode(err) == "InvalidInstanceType" || apiCode(err) == "InvalidParameterValue" {
			return 0, cfg.at("instance_type", "instance_type %q does not exist in region %s: %s", cfg.InstanceType, c.region, apiMessage(err))
		}
		return 2, nil
	}
	if len(out.InstanceTypes) == 0 {
		return 0, cfg.at("instance_type", "instance_type %q does not exist in region %s", cfg.InstanceType, c.region)
	}
	it := out.InstanceTypes[0]
	if p := it.ProcessorInfo; p != nil && len(p.SupportedArchitectures) > 0 {
		x86 := false
		for _, a := range p.SupportedArchitectures {
			x86 = x86 || a == types.ArchitectureTypeX8664
		}
		if !x86 {
			return 0, cfg.at("instance_type", "instance_type %q runs %v code, but the hosts run the linux/amd64 mapflow binary: pick an x86_64 type like %s",
				cfg.InstanceType, p.SupportedArchitectures, DefaultInstanceType)
		}
	}
	if it.VCpuInfo != nil && aws.ToInt32(it.VCpuInfo.DefaultVCpus) > 0 {
		return int(aws.ToInt32(it.VCpuInfo.DefaultVCpus)), nil
	}
	return 2, nil
}

// dryRun asks EC2 whether the launch would succeed.
func dryRun(ctx context.Context, f *fleet) error {
	_, err := f.c.ec2.RunInstances(ctx, f.runInput(f.cfg.Hosts, true))
	if err == nil || apiCode(err) == "DryRunOperation" {
		return nil
	}
	return f.launchError(err)
}
