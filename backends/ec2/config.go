package ec2

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	rt "github.com/mapflow/mapflow/runtime"
	"github.com/mapflow/mapflow/runtime/remote"
	"github.com/mapflow/mapflow/settings"
)

// DefaultInstanceType is the instance type when the env block does not say.
const DefaultInstanceType = "t3.micro"

func init() {
	rt.Register("ec2", func(c *Config) (rt.Backend, error) {
		b := New(*c)
		b.Log = os.Stderr
		return b, nil
	})
	// A worker's store: s3://bucket/prefix?region=R&endpoint=URL; credentials from the SDK's
	// default chain.
	remote.RegisterStore("s3", func(ctx context.Context, u *url.URL) (remote.Store, func(), error) {
		s, err := OpenStore(ctx, u.String())
		if err != nil {
			return nil, nil, err
		}
		return s, func() {}, nil
	})
}

// Config is the EC2 backend's settings: an `env ec2 { ... }` block. Region, credentials and
// endpoint left out here come from the AWS SDK's usual chain (environment, shared config
// files, instance role).
type Config struct {
	rt.Common
	Hosts        int    `setting:"hosts" default:"1" min:"1" max:"1000" help:"instances to start"`
	S3Path       string `setting:"s3_path" required:"true" help:"s3://bucket/prefix where job files, the binary and task records are staged"`
	Region       string `setting:"region" help:"AWS region; default: the SDK's usual chain (AWS_REGION, the profile)"`
	Endpoint     string `setting:"endpoint" help:"an S3/EC2-compatible endpoint URL (S3 is then addressed path-style)"`
	AMI          string `setting:"ami" required:"true" help:"an x86_64 Linux image with the AWS CLI (Amazon Linux has it)"`
	InstanceType string `setting:"instance_type" default:"t3.micro" help:"EC2 instance type"`
	Subnet       string `setting:"subnet" help:"subnet id to start the hosts in"`
	// SecurityGroups are ids (sg-...) or, in a default VPC, names.
	SecurityGroups  []string `setting:"security_groups" help:"security group ids (or names, in a default VPC)"`
	KeyName         string   `setting:"key_name" help:"EC2 key pair name, for ssh"`
	InstanceProfile string   `setting:"instance_profile" help:"IAM instance profile (name or ARN) the hosts reach S3 through"`
	Spot            bool     `setting:"spot" help:"one-time spot instances, terminated when interrupted"`
	// KeepHosts leaves the instances running when the job ends; each then powers itself off
	// once idle for IdleShutdown, or stays up until terminated by hand.
	KeepHosts bool `setting:"keep_hosts" help:"leave the hosts running after the job"`
	// IdleShutdown: a host whose worker has run no task and finished no chunk this long stops
	// it and powers off (0: DefaultIdleShutdown); with KeepHosts, a host stays up this long
	// after its worker ends (0: until terminated).
	IdleShutdown time.Duration `setting:"idle_shutdown_timeout" help:"how long an idle host stays up"`
	// TasksPerClaim is the most tasks a worker claims at once; 0 is 1 for programs (exec
	// functions: typically few and slow, so spread over every host, each result recorded as
	// it ends) and the staging protocol's 500 for expressions. Thousands of short programs run
	// faster with more per claim: a claim costs several S3 requests.
	TasksPerClaim int `setting:"tasks_per_claim" min:"1" max:"1000000" help:"tasks a worker claims at once; default 1 for programs, 500 for expressions"`
}

// Check checks the settings as written, without asking AWS anything.
func (c *Config) Check() []settings.Problem {
	ps := c.Common.Check()
	if _, _, err := ParseS3Path(c.S3Path); err != nil {
		ps = append(ps, settings.Problem{Key: "s3_path", Message: err.Error()})
	}
	if !strings.HasPrefix(c.AMI, "ami-") {
		ps = append(ps, settings.Problem{Key: "ami", Message: fmt.Sprintf("%q is not an image id", c.AMI), Hint: `an x86_64 Linux image with the AWS CLI, like "ami-0123456789abcdef0"`})
	}
	if c.InstanceType == "" {
		ps = append(ps, settings.Problem{Key: "instance_type", Message: "must not be empty", Hint: "leave it out for " + DefaultInstanceType})
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps = append(ps, settings.Problem{Key: "endpoint", Message: fmt.Sprintf("%q is not an http(s) URL", c.Endpoint), Hint: `like "http://127.0.0.1:5000"`})
		}
	}
	if c.IdleShutdown < 0 {
		ps = append(ps, settings.Problem{Key: "idle_shutdown_timeout", Message: "must be positive"})
	}
	return ps
}

// at prefixes msg with where key was written (else where the env block starts), so a
// message points at the user's text.
func (c Config) at(key, format string, args ...any) error {
	return c.Errorf([]string{key}, format, args...)
}

// bucketName is what S3 accepts as a bucket name (general purpose buckets).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Validate checks the configuration without asking AWS anything: what Check checks of a job
// file's block, and the bounds of a Config made in Go.
func (c Config) Validate() error {
	if c.Hosts < 1 || c.TasksPerClaim < 0 {
		return c.at("hosts", "hosts must be at least 1 and tasks_per_claim at least 0, not %d and %d", c.Hosts, c.TasksPerClaim)
	}
	if ps := c.Check(); len(ps) > 0 {
		return c.at(ps[0].Key, "%s: %s", ps[0].Key, ps[0].Message)
	}
	return nil
}

// ParseS3Path splits s3://bucket/prefix into the bucket and the prefix (without slashes at
// either end; "" for the bucket's root).
func ParseS3Path(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3:// URL, like \"s3://my-bucket/mapflow\"", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if !bucketName.MatchString(bucket) || strings.Contains(bucket, "..") {
		return "", "", fmt.Errorf("%q is not a valid S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens)", bucket)
	}
	prefix = strings.Trim(prefix, "/")
	if strings.Contains(prefix, "//") || strings.ContainsAny(prefix, "?#\x00") {
		return "", "", fmt.Errorf("s3 prefix %q has an empty path element or one of ?, #", prefix)
	}
	return bucket, prefix, nil
}
