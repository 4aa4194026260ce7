package ec2

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/mapflow/mapflow/lang"
)

// Config defaults.
const (
	DefaultHosts        = 1
	DefaultInstanceType = "t3.micro"
)

// Config is the EC2 backend's configuration, from an `env ec2 { ... }` block. Region,
// credentials and endpoint left out here come from the AWS SDK's usual chain (environment,
// shared config files, instance role).
type Config struct {
	Hosts        int    // instances to start (setting `hosts`, default 1)
	S3Path       string // s3://bucket/prefix where jobs are staged (`s3_path`, required)
	Region       string // `region`; default: AWS_REGION, the profile's region
	Endpoint     string // `endpoint`: an EC2/S3-compatible endpoint; S3 is then addressed path-style
	AMI          string // `ami`, required: an x86_64 Linux image with the AWS CLI (Amazon Linux has it)
	InstanceType string // `instance_type`, default t3.micro
	Subnet       string // `subnet`: a subnet id
	// SecurityGroups are ids (sg-...) or, in a default VPC, names (`security_groups`).
	SecurityGroups  []string
	KeyName         string // `key_name`: an EC2 key pair, for ssh
	InstanceProfile string // `instance_profile`: name or ARN; the hosts reach S3 through it
	Spot            bool   // `spot`: one-time spot instances, terminated when interrupted
	// KeepHosts leaves the instances running when the job ends (`keep_hosts`); each then
	// powers itself off once idle for IdleShutdown, or stays up until terminated by hand.
	KeepHosts bool
	// IdleShutdown (`idle_shutdown_timeout`): a host whose worker has run no task and finished
	// no chunk this long stops it and powers off (0: DefaultIdleShutdown); with KeepHosts, a
	// host stays up this long after its worker ends (0: until terminated).
	IdleShutdown time.Duration
	// TasksPerClaim is the most tasks a worker claims at once (`tasks_per_claim`); 0 is 1 for
	// programs (exec functions: typically few and slow, so spread over every host, each
	// result recorded as it ends) and the staging protocol's 500 for expressions. Thousands
	// of short programs run faster with more per claim: a claim costs several S3 requests.
	TasksPerClaim int

	// pos holds where each setting was written, for errors that point at the env block.
	pos map[string]lang.Pos
	// envPos is where the env block starts.
	envPos lang.Pos
}

// ConfigFromEnv reads an env block of kind ec2.
func ConfigFromEnv(env *lang.Env) (Config, error) {
	c := Config{Hosts: DefaultHosts, InstanceType: DefaultInstanceType}
	if env == nil || env.Kind != "ec2" {
		return c, fmt.Errorf("ec2: the env is not of kind ec2")
	}
	c.envPos = env.Pos
	c.pos = map[string]lang.Pos{}
	for key, s := range env.Settings {
		c.pos[key] = s.Pos
		var err error
		switch key {
		case "hosts":
			c.Hosts, err = intValue(s)
		case "tasks_per_claim":
			c.TasksPerClaim, err = intValue(s)
		case "s3_path":
			c.S3Path, err = stringValue(s)
		case "region":
			c.Region, err = stringValue(s)
		case "endpoint":
			c.Endpoint, err = stringValue(s)
		case "ami":
			c.AMI, err = stringValue(s)
		case "instance_type":
			c.InstanceType, err = stringValue(s)
		case "subnet":
			c.Subnet, err = stringValue(s)
		case "key_name":
			c.KeyName, err = stringValue(s)
		case "instance_profile":
			c.InstanceProfile, err = stringValue(s)
		case "security_groups":
			v, ok := s.Value.([]string)
			if !ok {
				err = fmt.Errorf("%s: security_groups must be a list of strings", s.Pos)
			}
			c.SecurityGroups = v
		case "spot":
			c.Spot, err = boolValue(s)
		case "keep_hosts":
			c.KeepHosts, err = boolValue(s)
		case "idle_shutdown_timeout":
			v, ok := s.Value.(time.Duration)
			if !ok {
				err = fmt.Errorf("%s: idle_shutdown_timeout must be a duration like 10m", s.Pos)
			}
			c.IdleShutdown = v
		}
		if err != nil {
			return c, err
		}
	}
	return c, c.Validate()
}

func intValue(s lang.Setting) (int, error) {
	switch v := s.Value.(type) {
	case int64:
		return int(v), nil
	case int:
		return v, nil
	}
	return 0, fmt.Errorf("%s: must be a whole number, not %v", s.Pos, s.Value)
}

func stringValue(s lang.Setting) (string, error) {
	v, ok := s.Value.(string)
	if !ok {
		return "", fmt.Errorf("%s: must be a string, not %v", s.Pos, s.Value)
	}
	return v, nil
}

func boolValue(s lang.Setting) (bool, error) {
	v, ok := s.Value.(bool)
	if !ok {
		return false, fmt.Errorf("%s: must be true or false, not %v", s.Pos, s.Value)
	}
	return v, nil
}

// at prefixes msg with where key was written (else where the env block starts), so a
// message points at the user's text.
func (c Config) at(key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if p, ok := c.pos[key]; ok {
		return fmt.Errorf("%s: %s", p, msg)
	}
	if c.envPos.Line > 0 {
		return fmt.Errorf("%s: %s", c.envPos, msg)
	}
	return fmt.Errorf("ec2: %s", msg)
}

// bucketName is what S3 accepts as a bucket name (general purpose buckets).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Validate checks the configuration without asking AWS anything.
func (c Config) Validate() error {
	if c.Hosts < 1 {
		return c.at("hosts", "hosts must be at least 1, not %d", c.Hosts)
	}
	if c.TasksPerClaim < 0 {
		return c.at("tasks_per_claim", "tasks_per_claim must be at least 1, not %d", c.TasksPerClaim)
	}
	if c.S3Path == "" {
		return c.at("s3_path", `s3_path is required: where jobs are staged, like "s3://my-bucket/mapflow"`)
	}
	if _, _, err := ParseS3Path(c.S3Path); err != nil {
		return c.at("s3_path", "%v", err)
	}
	if !strings.HasPrefix(c.AMI, "ami-") {
		return c.at("ami", `ami is required: an x86_64 Linux image with the AWS CLI, like "ami-0123456789abcdef0"`)
	}
	if c.InstanceType == "" {
		return c.at("instance_type", "instance_type must not be empty (leave it out for %s)", DefaultInstanceType)
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c.at("endpoint", `endpoint must be an http(s) URL, like "http://127.0.0.1:5000"`)
		}
	}
	if c.IdleShutdown < 0 {
		return c.at("idle_shutdown_timeout", "idle_shutdown_timeout must be positive")
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
