package yarn

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// This file holds the YARN records shared by the REST API and both RPC protocols, and their
// protobuf codecs (field numbers from yarn_protos.proto and Security.proto).

// ApplicationID names a YARN application: "application_<cluster timestamp>_<id>".
type ApplicationID struct {
	ClusterTimestamp int64
	ID               int32
}

// String gives the id in YARN's form, e.g. application_1700000000000_0001.
func (a ApplicationID) String() string {
	return fmt.Sprintf("application_%d_%04d", a.ClusterTimestamp, a.ID)
}

// ParseApplicationID parses YARN's text form of an application id.
func ParseApplicationID(s string) (ApplicationID, error) {
	parts := strings.Split(s, "_")
	if len(parts) != 3 || parts[0] != "application" {
		return ApplicationID{}, fmt.Errorf("application id %q: want application_<timestamp>_<number>", s)
	}
	ts, err1 := strconv.ParseInt(parts[1], 10, 64)
	id, err2 := strconv.ParseInt(parts[2], 10, 32)
	if err1 != nil || err2 != nil {
		return ApplicationID{}, fmt.Errorf("application id %q: want application_<timestamp>_<number>", s)
	}
	return ApplicationID{ClusterTimestamp: ts, ID: int32(id)}, nil
}

// AttemptID names one attempt of an application at running its ApplicationMaster.
type AttemptID struct {
	App     ApplicationID
	Attempt int32
}

// String gives the id in YARN's form, e.g. appattempt_1700000000000_0001_000001.
func (a AttemptID) String() string {
	return fmt.Sprintf("appattempt_%d_%04d_%06d", a.App.ClusterTimestamp, a.App.ID, a.Attempt)
}

// ContainerID names a container. ID holds the ResourceManager's epoch in its bits above 40, as
// on the wire.
type ContainerID struct {
	Attempt AttemptID
	ID      int64
}

const containerIDBits = 40

// String gives the id in YARN's form, e.g. container_1700000000000_0001_01_000002, or
// container_e17_1700000000000_0001_01_000002 when the epoch is not 0.
func (c ContainerID) String() string {
	var sb strings.Builder
	sb.WriteString("container_")
	if epoch := c.ID >> containerIDBits; epoch > 0 {
		fmt.Fprintf(&sb, "e%02d_", epoch)
	}
	fmt.Fprintf(&sb, "%d_%04d_%02d_%06d", c.Attempt.App.ClusterTimestamp, c.Attempt.App.ID,
		c.Attempt.Attempt, c.ID&(1<<containerIDBits-1))
	return sb.String()
}

// ParseContainerID parses YARN's text form of a container id, as in the CONTAINER_ID variable
// that the NodeManager sets in every container.
func ParseContainerID(s string) (ContainerID, error) {
	bad := func() (ContainerID, error) {
		return ContainerID{}, fmt.Errorf("container id %q: want container_[e<epoch>_]<timestamp>_<app>_<attempt>_<number>", s)
	}
	parts := strings.Split(s, "_")
	if len(parts) < 5 || parts[0] != "container" {
		return bad()
	}
	parts = parts[1:]
	var epoch int64
	if strings.HasPrefix(parts[0], "e") {
		e, err := strconv.ParseInt(parts[0][1:], 10, 64)
		if err != nil {
			return bad()
		}
		epoch, parts = e, parts[1:]
	}
	if len(parts) != 4 {
		return bad()
	}
	var n [4]int64
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v < 0 {
			return bad()
		}
		n[i] = v
	}
	if n[1] > 1<<31-1 || n[2] > 1<<31-1 || n[3] >= 1<<containerIDBits {
		return bad()
	}
	return ContainerID{
		Attempt: AttemptID{App: ApplicationID{ClusterTimestamp: n[0], ID: int32(n[1])}, Attempt: int32(n[2])},
		ID:      epoch<<containerIDBits | n[3],
	}, nil
}

// NodeID names a NodeManager by the host and port of its ContainerManagementProtocol server.
type NodeID struct {
	Host string
	Port int32
}

// String gives host:port, the address to dial.
func (n NodeID) String() string { return net.JoinHostPort(n.Host, strconv.Itoa(int(n.Port))) }

// Resource is an amount of memory and CPU.
type Resource struct {
	MemoryMB int64
	VCores   int32
}

// Token is a Hadoop token (org.apache.hadoop.security.token.Token): an opaque identifier, the
// password that the issuer derived from it, its kind (e.g. YARN_AM_RM_TOKEN, NMToken,
// ContainerToken) and the service (usually host:port) it is for.
type Token struct {
	Identifier []byte
	Password   []byte
	Kind       string
	Service    string
}

// Token kinds that YARN uses.
const (
	KindAMRMToken      = "YARN_AM_RM_TOKEN"
	KindNMToken        = "NMToken"
	KindContainerToken = "ContainerToken"
)

// Container is a container that the ResourceManager allocated to the application.
type Container struct {
	ID              ContainerID
	Node            NodeID
	NodeHTTPAddress string
	Resource        Resource
	Priority        int32
	// Token is the container token, to hand back to the NodeManager in StartContainers.
	Token Token
}

// ContainerState is the state of a container as YARN reports it.
type ContainerState int32

// Container states (ContainerStateProto).
const (
	ContainerNew       ContainerState = 1
	ContainerRunning   ContainerState = 2
	ContainerComplete  ContainerState = 3
	ContainerScheduled ContainerState = 4
)

// String gives YARN's name of the state, e.g. COMPLETE.
func (s ContainerState) String() string {
	switch s {
	case ContainerNew:
		return "NEW"
	case ContainerRunning:
		return "RUNNING"
	case ContainerComplete:
		return "COMPLETE"
	case ContainerScheduled:
		return "SCHEDULED"
	}
	return fmt.Sprintf("ContainerState(%d)", int32(s))
}

// Exit statuses that YARN gives containers it ended itself (ContainerExitStatus).
const (
	ExitInvalid          int32 = -1000 // no exit status yet
	ExitAborted          int32 = -100  // released by the AM or lost with its node
	ExitDisksFailed      int32 = -101
	ExitPreempted        int32 = -102
	ExitKilledExceededVM int32 = -103
	ExitKilledExceededPM int32 = -104
	ExitKilledByAM       int32 = -105
	ExitKilledByRM       int32 = -106
)

// ContainerStatus is a container's state and, once complete, its exit status and diagnostics.
type ContainerStatus struct {
	ID          ContainerID
	State       ContainerState
	Diagnostics string
	// ExitStatus is the process's exit code, one of the negative Exit* codes when YARN ended
	// it, or ExitInvalid while it runs.
	ExitStatus int32
}

// NMToken authenticates the ApplicationMaster to one NodeManager.
type NMToken struct {
	Node  NodeID
	Token Token
}

// LocalResourceType says how the NodeManager localizes a resource.
type LocalResourceType int32

// Local resource types (LocalResourceTypeProto). The zero value means File.
const (
	Archive LocalResourceType = 1 // unpacked (zip, tar, jar)
	File    LocalResourceType = 2 // copied as is
	Pattern LocalResourceType = 3
)

func (t LocalResourceType) orDefault() LocalResourceType {
	if t == 0 {
		return File
	}
	return t
}

// String gives YARN's name of the type (FILE for the zero value), as the REST API takes it.
func (t LocalResourceType) String() string {
	switch t.orDefault() {
	case Archive:
		return "ARCHIVE"
	case File:
		return "FILE"
	case Pattern:
		return "PATTERN"
	}
	return fmt.Sprintf("LocalResourceType(%d)", int32(t))
}

// Visibility says who may share a localized resource.
type Visibility int32

// Visibilities (LocalResourceVisibilityProto). The zero value means VisibilityApplication.
const (
	VisibilityPublic      Visibility = 1
	VisibilityPrivate     Visibility = 2
	VisibilityApplication Visibility = 3
)

func (v Visibility) orDefault() Visibility {
	if v == 0 {
		return VisibilityApplication
	}
	return v
}

// String gives YARN's name of the visibility (APPLICATION for the zero value), as the REST API
// takes it.
func (v Visibility) String() string {
	switch v.orDefault() {
	case VisibilityPublic:
		return "PUBLIC"
	case VisibilityPrivate:
		return "PRIVATE"
	case VisibilityApplication:
		return "APPLICATION"
	}
	return fmt.Sprintf("Visibility(%d)", int32(v))
}

// LocalResource is a file that the NodeManager copies into a container's working directory
// before it starts the container.
type LocalResource struct {
	// URL is the file's full URL, e.g. hdfs://namenode:8020/user/me/app/worker.
	URL string
	// Size and Timestamp (modification time in ms since the epoch) must equal what the file
	// system reports, or localization fails with "changed on src filesystem".
	Size      int64
	Timestamp int64
	Type      LocalResourceType
	// Visibility defaults to VisibilityApplication.
	Visibility Visibility
}

// LaunchContext is what a container runs: its files, environment and command.
type LaunchContext struct {
	// LocalResources maps each file's name in the working directory to its source.
	LocalResources map[string]LocalResource
	// Environment is added to the container's environment.
	Environment map[string]string
	// Commands are joined with spaces into the shell command that the container runs. The
	// NodeManager replaces <LOG_DIR> (the container's log directory), {{VAR}} and <CPS>.
	Commands []string
	// Tokens, if set, is a token file (see Credentials.Marshal) that the NodeManager writes to
	// the container's HADOOP_TOKEN_FILE_LOCATION.
	Tokens []byte
}

// FinalStatus is how an application says it ended.
type FinalStatus int32

// Final statuses (FinalApplicationStatusProto).
const (
	StatusUndefined FinalStatus = 0
	StatusSucceeded FinalStatus = 1
	StatusFailed    FinalStatus = 2
	StatusKilled    FinalStatus = 3
	StatusEnded     FinalStatus = 4
)

// String gives YARN's name of the status, e.g. SUCCEEDED, as the REST API reports it.
func (s FinalStatus) String() string {
	switch s {
	case StatusUndefined:
		return "UNDEFINED"
	case StatusSucceeded:
		return "SUCCEEDED"
	case StatusFailed:
		return "FAILED"
	case StatusKilled:
		return "KILLED"
	case StatusEnded:
		return "ENDED"
	}
	return fmt.Sprintf("FinalStatus(%d)", int32(s))
}

// ---- codecs ----

// ApplicationIdProto: id = 1, cluster_timestamp = 2.
func appendApplicationID(b []byte, a ApplicationID) []byte {
	b = appendInt32Field(b, 1, a.ID)
	return appendInt64Field(b, 2, a.ClusterTimestamp)
}

func decodeApplicationID(b []byte) (a ApplicationID, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			a.ID = f.int32()
		case 2:
			a.ClusterTimestamp = f.int64()
		}
		return nil
	})
	return a, err
}

// ApplicationAttemptIdProto: application_id = 1, attemptId = 2.
func appendAttemptID(b []byte, a AttemptID) []byte {
	b = appendBytesField(b, 1, appendApplicationID(nil, a.App))
	return appendInt32Field(b, 2, a.Attempt)
}

func decodeAttemptID(b []byte) (a AttemptID, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			var e error
			a.App, e = decodeApplicationID(f.msg())
			return e
		case 2:
			a.Attempt = f.int32()
		}
		return nil
	})
	return a, err
}

// ContainerIdProto: app_id = 1 (deprecated; read, not written), app_attempt_id = 2, id = 3.
func appendContainerID(b []byte, c ContainerID) []byte {
	b = appendBytesField(b, 2, appendAttemptID(nil, c.Attempt))
	return appendInt64Field(b, 3, c.ID)
}

func decodeContainerID(b []byte) (c ContainerID, err error) {
	var app ApplicationID
	haveAttempt := false
	err = walk(b, func(f field) error {
		var e error
		switch f.num {
		case 1:
			app, e = decodeApplicationID(f.msg())
		case 2:
			c.Attempt, e = decodeAttemptID(f.msg())
			haveAttempt = true
		case 3:
			c.ID = f.int64()
		}
		return e
	})
	if !haveAttempt {
		c.Attempt.App = app
	}
	return c, err
}

// NodeIdProto: host = 1, port = 2.
func appendNodeID(b []byte, n NodeID) []byte {
	b = appendStringField(b, 1, n.Host)
	return appendInt32Field(b, 2, n.Port)
}

func decodeNodeID(b []byte) (n NodeID, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			n.Host = f.str()
		case 2:
			n.Port = f.int32()
		}
		return nil
	})
	return n, err
}

// ResourceProto: memory = 1 (MB), virtual_cores = 2.
func appendResource(b []byte, r Resource) []byte {
	b = appendInt64Field(b, 1, r.MemoryMB)
	return appendInt32Field(b, 2, r.VCores)
}

func decodeResource(b []byte) (r Resource, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			r.MemoryMB = f.int64()
		case 2:
			r.VCores = f.int32()
		}
		return nil
	})
	return r, err
}

// PriorityProto: priority = 1.
func appendPriority(b []byte, p int32) []byte { return appendInt32Field(b, 1, p) }

func decodePriority(b []byte) (p int32, err error) {
	err = walk(b, func(f field) error {
		if f.num == 1 {
			p = f.int32()
		}
		return nil
	})
	return p, err
}

// TokenProto (Security.proto): identifier = 1, password = 2, kind = 3, service = 4.
func appendToken(b []byte, t Token) []byte {
	b = appendBytesField(b, 1, t.Identifier)
	b = appendBytesField(b, 2, t.Password)
	b = appendStringField(b, 3, t.Kind)
	return appendStringField(b, 4, t.Service)
}

func decodeToken(b []byte) (t Token, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			t.Identifier = f.bytes()
		case 2:
			t.Password = f.bytes()
		case 3:
			t.Kind = f.str()
		case 4:
			t.Service = f.str()
		}
		return nil
	})
	return t, err
}

// ContainerProto: id = 1, nodeId = 2, node_http_address = 3, resource = 4, priority = 5,
// container_token = 6.
func appendContainer(b []byte, c Container) []byte {
	b = appendBytesField(b, 1, appendContainerID(nil, c.ID))
	b = appendBytesField(b, 2, appendNodeID(nil, c.Node))
	b = appendStringField(b, 3, c.NodeHTTPAddress)
	b = appendBytesField(b, 4, appendResource(nil, c.Resource))
	b = appendBytesField(b, 5, appendPriority(nil, c.Priority))
	return appendBytesField(b, 6, appendToken(nil, c.Token))
}

func decodeContainer(b []byte) (c Container, err error) {
	err = walk(b, func(f field) error {
		var e error
		switch f.num {
		case 1:
			c.ID, e = decodeContainerID(f.msg())
		case 2:
			c.Node, e = decodeNodeID(f.msg())
		case 3:
			c.NodeHTTPAddress = f.str()
		case 4:
			c.Resource, e = decodeResource(f.msg())
		case 5:
			c.Priority, e = decodePriority(f.msg())
		case 6:
			c.Token, e = decodeToken(f.msg())
		}
		return e
	})
	return c, err
}

// ContainerStatusProto: container_id = 1, state = 2, diagnostics = 3, exit_status = 4
// (default -1000).
func appendContainerStatus(b []byte, s ContainerStatus) []byte {
	b = appendBytesField(b, 1, appendContainerID(nil, s.ID))
	b = appendInt32Field(b, 2, int32(s.State))
	b = appendStringField(b, 3, s.Diagnostics)
	return appendInt32Field(b, 4, s.ExitStatus)
}

func decodeContainerStatus(b []byte) (s ContainerStatus, err error) {
	s.ExitStatus = ExitInvalid
	err = walk(b, func(f field) error {
		var e error
		switch f.num {
		case 1:
			s.ID, e = decodeContainerID(f.msg())
		case 2:
			s.State = ContainerState(f.int32())
		case 3:
			s.Diagnostics = f.str()
		case 4:
			s.ExitStatus = f.int32()
		}
		return e
	})
	return s, err
}

// NMTokenProto (yarn_service_protos.proto): nodeId = 1, token = 2.
func appendNMToken(b []byte, t NMToken) []byte {
	b = appendBytesField(b, 1, appendNodeID(nil, t.Node))
	return appendBytesField(b, 2, appendToken(nil, t.Token))
}

func decodeNMToken(b []byte) (t NMToken, err error) {
	err = walk(b, func(f field) error {
		var e error
		switch f.num {
		case 1:
			t.Node, e = decodeNodeID(f.msg())
		case 2:
			t.Token, e = decodeToken(f.msg())
		}
		return e
	})
	return t, err
}

// urlProto is URLProto: scheme = 1, host = 2, port = 3, file = 4, userInfo = 5.
type urlProto struct {
	Scheme, Host string
	Port         int32
	File         string
	UserInfo     string
}

// parseResourceURL splits a resource URL the way YARN's URL record holds it.
func parseResourceURL(s string) (urlProto, error) {
	u, err := url.Parse(s)
	if err != nil {
		return urlProto{}, fmt.Errorf("resource URL %q: %w", s, err)
	}
	if u.Scheme == "" || u.Path == "" {
		return urlProto{}, fmt.Errorf("resource URL %q: want scheme://[host[:port]]/path", s)
	}
	p := urlProto{Scheme: u.Scheme, Host: u.Hostname(), Port: -1, File: u.Path}
	if u.User != nil {
		p.UserInfo = u.User.String()
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.ParseInt(ps, 10, 32)
		if err != nil {
			return urlProto{}, fmt.Errorf("resource URL %q: bad port", s)
		}
		p.Port = int32(n)
	}
	return p, nil
}

// String joins the parts back into a URL.
func (p urlProto) String() string {
	u := url.URL{Scheme: p.Scheme, Host: p.Host, Path: p.File}
	if p.Port >= 0 && p.Host != "" {
		u.Host = net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port)))
	}
	if p.UserInfo != "" {
		u.User = url.User(p.UserInfo)
	}
	return u.String()
}

func appendURL(b []byte, p urlProto) []byte {
	b = appendStringField(b, 1, p.Scheme)
	if p.Host != "" {
		b = appendStringField(b, 2, p.Host)
	}
	b = appendInt32Field(b, 3, p.Port)
	b = appendStringField(b, 4, p.File)
	if p.UserInfo != "" {
		b = appendStringField(b, 5, p.UserInfo)
	}
	return b
}

func decodeURL(b []byte) (p urlProto, err error) {
	p.Port = -1
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			p.Scheme = f.str()
		case 2:
			p.Host = f.str()
		case 3:
			p.Port = f.int32()
		case 4:
			p.File = f.str()
		case 5:
			p.UserInfo = f.str()
		}
		return nil
	})
	return p, err
}

// LocalResourceProto: resource = 1, size = 2, timestamp = 3, type = 4, visibility = 5.
func appendLocalResource(b []byte, r LocalResource) ([]byte, error) {
	u, err := parseResourceURL(r.URL)
	if err != nil {
		return nil, err
	}
	b = appendBytesField(b, 1, appendURL(nil, u))
	b = appendInt64Field(b, 2, r.Size)
	b = appendInt64Field(b, 3, r.Timestamp)
	b = appendInt32Field(b, 4, int32(r.Type.orDefault()))
	b = appendInt32Field(b, 5, int32(r.Visibility.orDefault()))
	return b, nil
}

func decodeLocalResource(b []byte) (r LocalResource, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			u, e := decodeURL(f.msg())
			r.URL = u.String()
			return e
		case 2:
			r.Size = f.int64()
		case 3:
			r.Timestamp = f.int64()
		case 4:
			r.Type = LocalResourceType(f.int32())
		case 5:
			r.Visibility = Visibility(f.int32())
		}
		return nil
	})
	return r, err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ContainerLaunchContextProto: localResources = 1 (StringLocalResourceMapProto {key = 1,
// value = 2}), tokens = 2, environment = 4 (StringStringMapProto {key = 1, value = 2}),
// command = 5.
func appendLaunchContext(b []byte, c LaunchContext) ([]byte, error) {
	for _, k := range sortedKeys(c.LocalResources) {
		r, err := appendLocalResource(nil, c.LocalResources[k])
		if err != nil {
			return nil, fmt.Errorf("local resource %s: %w", k, err)
		}
		e := appendStringField(nil, 1, k)
		e = appendBytesField(e, 2, r)
		b = appendBytesField(b, 1, e)
	}
	if c.Tokens != nil {
		b = appendBytesField(b, 2, c.Tokens)
	}
	for _, k := range sortedKeys(c.Environment) {
		e := appendStringField(nil, 1, k)
		e = appendStringField(e, 2, c.Environment[k])
		b = appendBytesField(b, 4, e)
	}
	for _, cmd := range c.Commands {
		b = appendStringField(b, 5, cmd)
	}
	return b, nil
}

func decodeLaunchContext(b []byte) (c LaunchContext, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			var key string
			var r LocalResource
			if err := walk(f.msg(), func(g field) error {
				var e error
				switch g.num {
				case 1:
					key = g.str()
				case 2:
					r, e = decodeLocalResource(g.msg())
				}
				return e
			}); err != nil {
				return err
			}
			if c.LocalResources == nil {
				c.LocalResources = map[string]LocalResource{}
			}
			c.LocalResources[key] = r
		case 2:
			c.Tokens = f.bytes()
		case 4:
			var key, val string
			if err := walk(f.msg(), func(g field) error {
				switch g.num {
				case 1:
					key = g.str()
				case 2:
					val = g.str()
				}
				return nil
			}); err != nil {
				return err
			}
			if c.Environment == nil {
				c.Environment = map[string]string{}
			}
			c.Environment[key] = val
		case 5:
			c.Commands = append(c.Commands, f.str())
		}
		return nil
	})
	return c, err
}

// SerializedExceptionProto: message = 1, trace = 2, class_name = 3, cause = 4.
func decodeSerializedException(b []byte) (class, message string, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			message = f.str()
		case 3:
			class = f.str()
		}
		return nil
	})
	return class, message, err
}

func appendSerializedException(b []byte, class, message string) []byte {
	b = appendStringField(b, 1, message)
	return appendStringField(b, 3, class)
}
