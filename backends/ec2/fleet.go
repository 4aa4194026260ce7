package ec2

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2svc "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mapflow/mapflow/runtime/remote"
)

// Tags on every instance of a job.
const (
	TagJobID   = "mapflow:job-id"  // the catalog's job id
	TagStaging = "mapflow:staging" // the run's staging, JOBID/run-TIME under s3_path
	TagJob     = "mapflow:job"     // the job's name
	TagEnv     = "mapflow:env"     // the env block's name
)

// workerStarts is how often a host starts a worker whose predecessor died: the first is
// named after the instance (i-...), the next ones i-....2, i-....3 and so on.
const workerStarts = 6

// workerIDs are the ids the workers of instance id may have had.
func workerIDs(id string) []string {
	ids := []string{id}
	for n := 2; n <= workerStarts; n++ {
		ids = append(ids, fmt.Sprintf("%s.%d", id, n))
	}
	return ids
}

// fleet is the instances of one run: it launches them, watches them, replaces them when all
// are gone before the job ends, and terminates them.
type fleet struct {
	cfg      Config
	c        *clients
	store    remote.Store
	jobID    string // the catalog's
	runID    string // JOBID/run-TIME: the staging, and what the instances are found by
	jobName  string
	envName  string
	userData string
	log      io.Writer
	every    time.Duration // how often to describe the instances

	mu        sync.Mutex
	instances map[string]*instance // by id
	launches  int                  // RunInstances calls made, for client tokens
	replaced  int                  // instances launched to replace lost ones
	lastLook  time.Time
	allGone   time.Time // when every instance was first seen gone; zero while some live
	failures  int       // DescribeInstances failures in a row
	firstFail time.Time
}

// instance is one host as last described.
type instance struct {
	id       string
	launched time.Time
	state    types.InstanceStateName
	reason   string // the state reason, for a host that ended
	lost     bool   // marked lost in the staging
}

func (f *fleet) logf(format string, args ...any) {
	if f.log != nil {
		fmt.Fprintf(f.log, "ec2: "+format+"\n", args...)
	}
}

// runInput is the RunInstances request for n hosts.
func (f *fleet) runInput(n int, dryRun bool) *ec2svc.RunInstancesInput {
	tags := []types.Tag{
		{Key: aws.String("Name"), Value: aws.String("mapflow " + f.jobName)},
		{Key: aws.String(TagJobID), Value: aws.String(f.jobID)},
		{Key: aws.String(TagStaging), Value: aws.String(f.runID)},
		{Key: aws.String(TagJob), Value: aws.String(f.jobName)},
		{Key: aws.String(TagEnv), Value: aws.String(f.envName)},
	}
	in := &ec2svc.RunInstancesInput{
		ImageId:                           aws.String(f.cfg.AMI),
		InstanceType:                      types.InstanceType(f.cfg.InstanceType),
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(int32(n)),
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
		// IMDSv2 only: the user-data asks the metadata service for the instance id with a token.
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens:   types.HttpTokensStateRequired,
			HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
		},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags},
		},
		DryRun: aws.Bool(dryRun),
	}
	if f.userData != "" {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(f.userData)))
	}
	if f.cfg.Subnet != "" {
		in.SubnetId = aws.String(f.cfg.Subnet)
	}
	for _, g := range f.cfg.SecurityGroups {
		if strings.HasPrefix(g, "sg-") {
			in.SecurityGroupIds = append(in.SecurityGroupIds, g)
		} else {
			in.SecurityGroups = append(in.SecurityGroups, g)
		}
	}
	if f.cfg.KeyName != "" {
		in.KeyName = aws.String(f.cfg.KeyName)
	}
	if p := f.cfg.InstanceProfile; p != "" {
		if strings.HasPrefix(p, "arn:") {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String(p)}
		} else {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String(p)}
		}
	}
	if f.cfg.Spot {
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{
			MarketType: types.MarketTypeSpot,
			SpotOptions: &types.SpotMarketOptions{
				SpotInstanceType:             types.SpotInstanceTypeOneTime,
				InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate,
			},
		}
	}
	return in
}

// launch starts n hosts. RunInstances may start fewer than asked (MinCount 1), so it asks
// again for the rest; a failure after some started leaves the job running on those.
func (f *fleet) launch(ctx context.Context, n int) error {
	var started []string
	for len(started) < n {
		f.mu.Lock()
		f.launches++
		token := fmt.Sprintf("%s-%d", f.runID, f.launches)
		f.mu.Unlock()
		in := f.runInput(n-len(started), false)
		if len(token) > 64 {
			token = token[len(token)-64:]
		}
		in.ClientToken = aws.String(token)
		out, err := f.c.ec2.RunInstances(ctx, in)
		if err != nil {
			if len(started) > 0 {
				f.logf("started %d of %d instances; the job runs on those (the rest: %s)", len(started), n, apiMessage(err))
				break
			}
			return f.launchError(err)
		}
		if len(out.Instances) == 0 {
			return errors.New("RunInstances started no instance")
		}
		now := time.Now()
		f.mu.Lock()
		for _, in := range out.Instances {
			id := aws.ToString(in.InstanceId)
			state := types.InstanceStateNamePending
			if in.State != nil {
				state = in.State.Name
			}
			f.instances[id] = &instance{id: id, launched: now, state: state}
			started = append(started, id)
		}
		f.mu.Unlock()
	}
	kind := ""
	if f.cfg.Spot {
		kind = "spot "
	}
	f.logf("started %d %sinstances of %s (%s) in %s: %s", len(started), kind, f.cfg.AMI, f.cfg.InstanceType,
		f.c.region, strings.Join(started, " "))
	return nil
}

// launchError explains a failed RunInstances.
func (f *fleet) launchError(err error) error {
	switch {
	case isCredentialsError(err):
		return fmt.Errorf("AWS refused the credentials: %s", apiMessage(err))
	case isDenied(err):
		return fmt.Errorf("these credentials may not start instances (ec2:RunInstances, and iam:PassRole for an instance_profile): %s", apiMessage(err))
	case strings.HasPrefix(apiCode(err), "InvalidAMIID"):
		return f.cfg.at("ami", "ami %q: %s", f.cfg.AMI, apiMessage(err))
	case strings.HasPrefix(apiCode(err), "InvalidSubnet"):
		return f.cfg.at("subnet", "subnet %q: %s", f.cfg.Subnet, apiMessage(err))
	case strings.HasPrefix(apiCode(err), "InvalidGroup"), strings.HasPrefix(apiCode(err), "InvalidSecurityGroup"):
		return f.cfg.at("security_groups", "security_groups: %s", apiMessage(err))
	case strings.HasPrefix(apiCode(err), "InvalidKeyPair"):
		return f.cfg.at("key_name", "key_name %q: %s", f.cfg.KeyName, apiMessage(err))
	case apiCode(err) == "NoSuchEntity", strings.Contains(apiMessage(err), "iamInstanceProfile"):
		return f.cfg.at("instance_profile", "instance_profile %q: %s", f.cfg.InstanceProfile, apiMessage(err))
	case strings.Contains(apiMessage(err), "instance type"), apiCode(err) == "Unsupported", apiCode(err) == "InvalidInstanceType":
		return f.cfg.at("instance_type", "instance_type %q: %s", f.cfg.InstanceType, apiMessage(err))
	}
	return fmt.Errorf("start the instances: %w", err)
}

// ids returns the ids of every instance launched, sorted.
func (f *fleet) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.instances))
	for id := range f.instances {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// gone tells whether a host in state s has ended (or is ending) for good.
func gone(s types.InstanceStateName) bool {
	switch s {
	case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated,
		types.InstanceStateNameStopping, types.InstanceStateNameStopped:
		return true
	}
	return false
}

// describe refreshes the instances' states. An instance AWS does not list yet (describes are
// eventually consistent) counts as pending for its first two minutes.
func (f *fleet) describe(ctx context.Context) error {
	seen := map[string]bool{}
	// By id, which is cheap; an id EC2 does not know yet (it has just started) fails the
	// call, and then the run's tag finds them.
	in := &ec2svc.DescribeInstancesInput{InstanceIds: f.ids()}
	pages, err := f.describePages(ctx, in)
	if strings.HasPrefix(apiCode(err), "InvalidInstanceID") {
		in = &ec2svc.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:" + TagStaging), Values: []string{f.runID}}}}
		pages, err = f.describePages(ctx, in)
	}
	if err != nil {
		return err
	}
	for _, page := range pages {
		f.mu.Lock()
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				inst := f.instances[aws.ToString(in.InstanceId)]
				if inst == nil || in.State == nil {
					continue
				}
				seen[inst.id] = true
				inst.state = in.State.Name
				if in.StateReason != nil {
					inst.reason = aws.ToString(in.StateReason.Message)
				}
			}
		}
		f.mu.Unlock()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, inst := range f.instances {
		if !seen[id] && !gone(inst.state) && time.Since(inst.launched) > 2*time.Minute {
			inst.state = types.InstanceStateNameTerminated
			inst.reason = "no longer listed by DescribeInstances"
		}
	}
	return nil
}

func (f *fleet) describePages(ctx context.Context, in *ec2svc.DescribeInstancesInput) ([]*ec2svc.DescribeInstancesOutput, error) {
	var pages []*ec2svc.DescribeInstancesOutput
	p := ec2svc.NewDescribeInstancesPaginator(f.c.ec2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		pages = append(pages, page)
	}
	return pages, nil
}

// watch is the driver's Watch: every f.every it describes the instances, marks those gone
// as lost (so their unfinished chunks run again on the others), and when none is left
// before the job ends, launches as many again once; when those are gone too, it fails.
func (f *fleet) watch(ctx context.Context) error {
	f.mu.Lock()
	due := time.Since(f.lastLook) >= f.every
	if due {
		f.lastLook = time.Now()
	}
	f.mu.Unlock()
	if !due {
		return nil
	}
	if err := f.describe(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.failures == 0 {
			f.firstFail = time.Now()
		}
		f.failures++
		if time.Since(f.firstFail) > 5*time.Minute {
			return fmt.Errorf("describe the instances: failing for %s: %w", time.Since(f.firstFail).Round(time.Second), err)
		}
		if f.failures == 1 {
			f.logf("describe the instances: %s (retrying)", apiMessage(err))
		}
		return nil
	}
	f.mu.Lock()
	f.failures = 0
	var newlyLost []*instance
	live := 0
	for _, inst := range f.instances {
		if gone(inst.state) {
			if !inst.lost {
				inst.lost = true
				newlyLost = append(newlyLost, inst)
			}
		} else {
			live++
		}
	}
	f.mu.Unlock()
	for _, inst := range newlyLost {
		for _, w := range workerIDs(inst.id) {
			if err := remote.MarkLost(ctx, f.store, w); err != nil && ctx.Err() == nil {
				return fmt.Errorf("mark the workers of instance %s lost: %w", inst.id, err)
			}
		}
		why := ""
		if inst.reason != "" {
			why = " (" + inst.reason + ")"
		}
		f.logf("instance %s is %s%s", inst.id, inst.state, why)
	}
	if live > 0 {
		f.allGone = time.Time{}
		return nil
	}
	// Every host is gone. The last workers end when the job does, so look once more (the
	// driver reads the last results in between) before taking it for a failure.
	if f.allGone.IsZero() {
		f.allGone = time.Now()
		return nil
	}
	if f.replaced < f.cfg.Hosts {
		n := f.cfg.Hosts
		f.logf("every instance ended before the job did: starting %d more", n)
		if err := f.launch(ctx, n); err != nil {
			return fmt.Errorf("replace the lost instances: %w", err)
		}
		f.replaced += n
		f.allGone = time.Time{}
		return nil
	}
	return f.goneError(ctx)
}

// goneError says that every host ended before the job, with what they left to explain it.
func (f *fleet) goneError(ctx context.Context) error {
	ids := f.ids()
	var b strings.Builder
	fmt.Fprintf(&b, "every instance ended before the job finished (%s)", strings.Join(ids, ", "))
	f.mu.Lock()
	for _, id := range ids {
		if r := f.instances[id].reason; r != "" {
			fmt.Fprintf(&b, "; %s: %s", id, r)
			break
		}
	}
	f.mu.Unlock()
	for _, id := range ids {
		data, err := f.store.Get(ctx, "hosts/"+id+".log")
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 8 {
			lines = lines[len(lines)-8:]
		}
		fmt.Fprintf(&b, "; the end of %s's log:\n%s", id, strings.Join(lines, "\n"))
		return errors.New(b.String())
	}
	fmt.Fprintf(&b, "; no host log reached S3: see `aws ec2 get-console-output --instance-id %s`", ids[len(ids)-1])
	return errors.New(b.String())
}

// terminate ends every instance of the run that has not ended. It outlives the run's
// context: a canceled job's hosts must end too.
func (f *fleet) terminate() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f.terminateAll(ctx)
}

// terminateAll ends every instance of the run that has not ended, trying thrice, and says
// which it could not.
func (f *fleet) terminateAll(ctx context.Context) error {
	var ids []string
	f.mu.Lock()
	for id, inst := range f.instances {
		if inst.state != types.InstanceStateNameTerminated {
			ids = append(ids, id)
		}
	}
	f.mu.Unlock()
	sort.Strings(ids)
	if len(ids) == 0 {
		return nil
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = f.c.ec2.TerminateInstances(ctx, &ec2svc.TerminateInstancesInput{InstanceIds: ids}); err == nil {
			f.logf("terminated %d instances", len(ids))
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * time.Second)
	}
	err = fmt.Errorf("could not terminate instances %s: %s; terminate them with: aws ec2 terminate-instances --region %s --instance-ids %s",
		strings.Join(ids, " "), apiMessage(err), f.c.region, strings.Join(ids, " "))
	f.logf("%v", err)
	return err
}
