package lang

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"
)

// The settings each env kind takes. The backends read Env.Settings knowing that every value
// already has the type declared here and passed its constraint.

type settingType int

const (
	typeInt settingType = iota
	typeString
	typeBool
	typeDuration
	typeStringList
)

// example is how a value of the type is written.
func (t settingType) example() string {
	switch t {
	case typeInt:
		return "4"
	case typeString:
		return `"..."`
	case typeBool:
		return "true"
	case typeDuration:
		return "5m"
	}
	return `["a", "b"]`
}

func (t settingType) String() string {
	switch t {
	case typeInt:
		return "an integer"
	case typeString:
		return "a string"
	case typeBool:
		return "true or false"
	case typeDuration:
		return "a duration like 30s or 5m"
	case typeStringList:
		return `a list of strings like ["a", "b"]`
	}
	return "?"
}

type settingSpec struct {
	typ      settingType
	required bool
	// check returns a description of what is wrong with the value, or "".
	check func(v any) string
	help  string
}

func minInt(n int64) func(any) string {
	return func(v any) string {
		if v.(int64) < n {
			return fmt.Sprintf("must be at least %d", n)
		}
		return ""
	}
}

// intRange bounds an integer setting on both sides: a value past any real use (workers =
// 9223372036854775807) is a mistake, and would cost the driver that much.
func intRange(lo, hi int64) func(any) string {
	return func(v any) string {
		if n := v.(int64); n < lo || n > hi {
			return fmt.Sprintf("must be from %d to %d", lo, hi)
		}
		return ""
	}
}

func prefix(p, example string) func(any) string {
	return func(v any) string {
		if !strings.HasPrefix(v.(string), p) {
			return fmt.Sprintf("must start with %q, like %q", p, example)
		}
		return ""
	}
}

func hostPort(v any) string {
	if _, port, err := net.SplitHostPort(v.(string)); err != nil || port == "" {
		return `must be host:port, like "namenode:8020"`
	}
	return ""
}

func httpURL(v any) string {
	u, err := url.Parse(v.(string))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return `must be an http(s) URL, like "http://127.0.0.1:5000"`
	}
	return ""
}

func distPath(v any) string {
	s := v.(string)
	if strings.HasPrefix(s, "hdfs://") || path.IsAbs(s) {
		return ""
	}
	return `must be an hdfs:// URL or an absolute path, like "hdfs://namenode:8020/user/me/mapflow"`
}

func positiveDuration(v any) string {
	if v.(time.Duration) <= 0 {
		return "must be positive"
	}
	return ""
}

// pythonSetting is the interpreter of python(...) functions, in every env kind.
var pythonSetting = settingSpec{typ: typeString, check: nonEmpty, help: "the Python interpreter that runs python(...) functions on the workers; default python3 on PATH"}

func nonEmpty(v any) string {
	if v.(string) == "" {
		return "must not be empty"
	}
	return ""
}

// envSchemas maps an env kind to its settings.
var envSchemas = map[string]map[string]settingSpec{
	"local": {
		"workers": {typ: typeInt, check: intRange(1, 4096), help: "goroutines or processes running tasks at once; default: the number of CPUs"},
		"python":  pythonSetting,
	},
	"ec2": {
		"hosts":                 {typ: typeInt, check: intRange(1, 1000), help: "instances to start; default 1"},
		"s3_path":               {typ: typeString, required: true, check: prefix("s3://", "s3://bucket/prefix"), help: "where job files, the binary and task records are staged"},
		"region":                {typ: typeString, help: "AWS region; default: the SDK's usual chain"},
		"instance_type":         {typ: typeString, help: "EC2 instance type, like t3.micro"},
		"ami":                   {typ: typeString, required: true, check: prefix("ami-", "ami-0123456789abcdef0"), help: "the image the hosts boot"},
		"subnet":                {typ: typeString, help: "subnet id to start the hosts in"},
		"security_groups":       {typ: typeStringList, help: "security group ids"},
		"key_name":              {typ: typeString, help: "EC2 key pair name, for ssh"},
		"instance_profile":      {typ: typeString, help: "IAM instance profile the hosts run as"},
		"spot":                  {typ: typeBool, help: "use spot instances"},
		"endpoint":              {typ: typeString, check: httpURL, help: "an S3/EC2-compatible endpoint, for testing"},
		"idle_shutdown_timeout": {typ: typeDuration, check: positiveDuration, help: "terminate hosts idle this long"},
		"keep_hosts":            {typ: typeBool, help: "leave the hosts running after the job"},
		"tasks_per_claim":       {typ: typeInt, check: intRange(1, 1000000), help: "tasks a worker claims at once"},
		"python":                pythonSetting,
	},
	"hadoop": {
		"containers":             {typ: typeInt, check: intRange(1, 10000), help: "YARN containers running workers"},
		"dist_path":              {typ: typeString, required: true, check: distPath, help: "HDFS directory where job files and the binary are staged"},
		"hadoop_conf_dir":        {typ: typeString, help: "directory holding core-site.xml and yarn-site.xml; ~/ is the home directory"},
		"container_memory_mb":    {typ: typeInt, check: intRange(128, 1<<20), help: "memory per container in MiB"},
		"container_vcores":       {typ: typeInt, check: intRange(1, 1024), help: "virtual cores per container"},
		"queue":                  {typ: typeString, help: "YARN queue"},
		"namenode":               {typ: typeString, check: hostPort, help: "HDFS namenode host:port; default: from hadoop_conf_dir"},
		"resourcemanager":        {typ: typeString, check: hostPort, help: "YARN resourcemanager host:port; default: from hadoop_conf_dir"},
		"resourcemanager_webapp": {typ: typeString, check: hostPort, help: "YARN resourcemanager web address host:port"},
		"user":                   {typ: typeString, help: "the Hadoop user to run as"},
		"python":                 pythonSetting,
	},
}

var envKinds = []string{"local", "ec2", "hadoop"}

// EnvSetting describes one setting an env kind takes, for documentation and `mapflow check`.
type EnvSetting struct {
	Key      string
	Type     string // how the value is written: "an integer", "a string", ...
	Required bool
	Help     string
}

// EnvSettings returns the settings the env kind takes, sorted by key; nil for an unknown
// kind.
func EnvSettings(kind string) []EnvSetting {
	schema, ok := envSchemas[kind]
	if !ok {
		return nil
	}
	out := make([]EnvSetting, 0, len(schema))
	for k, s := range schema {
		out = append(out, EnvSetting{Key: k, Type: s.typ.String(), Required: s.required, Help: s.help})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func schemaKeys(kind string) []string {
	var keys []string
	for k := range envSchemas[kind] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
