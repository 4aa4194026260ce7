package yarn

import (
	"context"
	"fmt"
	"sync"
)

// ProtocolAM is the ApplicationMasterProtocol's name on the wire.
const ProtocolAM = "org.apache.hadoop.yarn.api.ApplicationMasterProtocolPB"

// AMClient is an ApplicationMaster's client of the ResourceManager's ApplicationMasterProtocol
// (on yarn.resourcemanager.scheduler.address). It remembers the NMTokens that Register and
// Allocate hand out, takes up a rolled-over AMRMToken, and hands out NMClients per node. It is
// safe for concurrent use; calls are serialized on one connection.
type AMClient struct {
	rpc *RPCClient

	mu       sync.Mutex
	nmTokens map[NodeID]Token
	nms      map[NodeID]*NMClient
}

// NewAMClient returns a client of the scheduler at addr (host:port), authenticating with the
// application attempt's AMRMToken (see AMRMTokenFromEnv). It does not connect yet.
func NewAMClient(addr string, amrmToken Token) *AMClient {
	return &AMClient{
		rpc:      NewRPCClient(addr, RPCOptions{Protocol: ProtocolAM, Token: &amrmToken}),
		nmTokens: map[NodeID]Token{},
		nms:      map[NodeID]*NMClient{},
	}
}

// RegisterRequest is what an ApplicationMaster tells the ResourceManager about itself.
type RegisterRequest struct {
	// Host and RPCPort are where clients may reach the ApplicationMaster (RPCPort -1 or 0:
	// nowhere); TrackingURL is shown in the ResourceManager's UI.
	Host        string
	RPCPort     int32
	TrackingURL string
}

// RegisterResponse is the ResourceManager's answer to Register.
type RegisterResponse struct {
	// MaxCapability is the largest container the scheduler grants.
	MaxCapability Resource
	Queue         string
	// PreviousContainers are containers still running from an earlier attempt (only when the
	// application keeps containers across attempts).
	PreviousContainers []Container
	// PreviousNMTokens are the NMTokens for PreviousContainers' nodes.
	PreviousNMTokens []NMToken
}

// Register registers the ApplicationMaster; it must be the first call of an attempt, and must
// come before the AM's liveness expiry (10 minutes by default) after the container started.
func (c *AMClient) Register(ctx context.Context, req RegisterRequest) (*RegisterResponse, error) {
	b, err := c.rpc.Call(ctx, "registerApplicationMaster", req.marshal())
	if err != nil {
		return nil, err
	}
	resp, err := decodeRegisterResponse(b)
	if err != nil {
		return nil, fmt.Errorf("yarn: registerApplicationMaster: %w", err)
	}
	c.rememberNMTokens(resp.PreviousNMTokens)
	return resp, nil
}

// ResourceRequest asks for containers of one size at one priority and place.
type ResourceRequest struct {
	Priority int32
	// ResourceName is "*" (anywhere, the default), a rack or a host name.
	ResourceName string
	Capability   Resource
	// NumContainers is the total number still wanted for this priority, name and capability.
	NumContainers int32
	// StrictLocality turns relax_locality off (it is on by default).
	StrictLocality bool
}

// AllocateRequest is one heartbeat to the scheduler.
type AllocateRequest struct {
	// ResponseID is the previous AllocateResponse's ResponseID, 0 at first. The
	// ResourceManager uses it to spot a lost or repeated heartbeat: it answers a repeat of the
	// last one again, and refuses any other stale id (InvalidApplicationMasterRequestException).
	ResponseID int32
	// Progress is between 0 and 1.
	Progress float32
	// Asks replace the scheduler's outstanding request for the same priority, resource name and
	// capability. The scheduler counts granted containers down itself, so send an ask once and
	// again only to change its count (0 cancels it); repeating it every heartbeat asks for
	// more containers.
	Asks []ResourceRequest
	// Releases gives containers back.
	Releases []ContainerID
}

// AMCommand is an order from the ResourceManager to the ApplicationMaster.
type AMCommand int32

// AM commands (AMCommandProto).
const (
	AMResync   AMCommand = 1 // the ResourceManager restarted: Register again
	AMShutdown AMCommand = 2 // the attempt is over: exit
)

// AllocateResponse is the scheduler's answer to a heartbeat.
type AllocateResponse struct {
	ResponseID int32
	// Command is 0, AMResync or AMShutdown.
	Command   AMCommand
	Allocated []Container
	Completed []ContainerStatus
	// NMTokens are new NMTokens (the AMClient remembers them; see NodeManager).
	NMTokens []NMToken
	// Limit is the headroom: what the application may still get.
	Limit        Resource
	ClusterNodes int32
	// AMRMToken, if set, is a new AMRMToken (the master key rolled over); the AMClient uses it
	// for its next connection.
	AMRMToken *Token
}

// Allocate sends one heartbeat: asks and releases, and progress. The ApplicationMaster must call
// it at least every yarn.am.liveness-monitor.expiry-interval-ms (10 minutes), and usually calls
// it every second or so while it waits for containers.
func (c *AMClient) Allocate(ctx context.Context, req AllocateRequest) (*AllocateResponse, error) {
	b, err := c.rpc.Call(ctx, "allocate", req.marshal())
	if err != nil {
		return nil, err
	}
	resp, err := decodeAllocateResponse(b)
	if err != nil {
		return nil, fmt.Errorf("yarn: allocate: %w", err)
	}
	c.rememberNMTokens(resp.NMTokens)
	if resp.AMRMToken != nil {
		c.rpc.SetToken(*resp.AMRMToken)
	}
	return resp, nil
}

// FinishRequest is how the ApplicationMaster says the application ended.
type FinishRequest struct {
	Status      FinalStatus
	Diagnostics string
	TrackingURL string
}

// Finish unregisters the ApplicationMaster with the application's final status. It returns
// whether the ResourceManager has unregistered it; when false (it is still saving state) call
// Finish again after a short wait. After Finish the AM should exit.
func (c *AMClient) Finish(ctx context.Context, req FinishRequest) (unregistered bool, err error) {
	b, err := c.rpc.Call(ctx, "finishApplicationMaster", req.marshal())
	if err != nil {
		return false, err
	}
	err = walk(b, func(f field) error {
		if f.num == 1 {
			unregistered = f.bool()
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("yarn: finishApplicationMaster: %w", err)
	}
	return unregistered, nil
}

// NMToken returns the NMToken for a node, if Register or Allocate has handed one out.
func (c *AMClient) NMToken(node NodeID) (Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.nmTokens[node]
	return t, ok
}

// NodeManager returns a client of the NodeManager on node, authenticated with the node's NMToken.
// Clients are kept and reused; a new NMToken for the node replaces the kept client.
func (c *AMClient) NodeManager(node NodeID) (*NMClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nm, ok := c.nms[node]; ok {
		return nm, nil
	}
	t, ok := c.nmTokens[node]
	if !ok {
		return nil, fmt.Errorf("yarn: %w: no NMToken for node %s (it comes with the first container allocated there)", ErrUnauthorized, node)
	}
	nm := NewNMClient(node.String(), t)
	c.nms[node] = nm
	return nm, nil
}

func (c *AMClient) rememberNMTokens(ts []NMToken) {
	if len(ts) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range ts {
		c.nmTokens[t.Node] = t.Token
		if nm, ok := c.nms[t.Node]; ok {
			nm.Close()
			delete(c.nms, t.Node)
		}
	}
}

// Close closes the connections to the ResourceManager and the NodeManagers.
func (c *AMClient) Close() error {
	c.mu.Lock()
	for n, nm := range c.nms {
		nm.Close()
		delete(c.nms, n)
	}
	c.mu.Unlock()
	return c.rpc.Close()
}

// ---- messages (yarn_service_protos.proto, yarn_protos.proto) ----

// RegisterApplicationMasterRequestProto: host = 1, rpc_port = 2, tracking_url = 3.
func (r RegisterRequest) marshal() []byte {
	b := appendStringField(nil, 1, r.Host)
	b = appendInt32Field(b, 2, r.RPCPort)
	return appendStringField(b, 3, r.TrackingURL)
}

func decodeRegisterRequest(b []byte) (r RegisterRequest, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			r.Host = f.str()
		case 2:
			r.RPCPort = f.int32()
		case 3:
			r.TrackingURL = f.str()
		}
		return nil
	})
	return r, err
}

// RegisterApplicationMasterResponseProto: maximumCapability = 1,
// containers_from_previous_attempts = 4, queue = 5, nm_tokens_from_previous_attempts = 6.
func (r *RegisterResponse) marshal() []byte {
	b := appendBytesField(nil, 1, appendResource(nil, r.MaxCapability))
	for _, c := range r.PreviousContainers {
		b = appendBytesField(b, 4, appendContainer(nil, c))
	}
	b = appendStringField(b, 5, r.Queue)
	for _, t := range r.PreviousNMTokens {
		b = appendBytesField(b, 6, appendNMToken(nil, t))
	}
	return b
}

func decodeRegisterResponse(b []byte) (*RegisterResponse, error) {
	r := &RegisterResponse{}
	err := walk(b, func(f field) error {
		var e error
		switch f.num {
		case 1:
			r.MaxCapability, e = decodeResource(f.msg())
		case 4:
			var c Container
			c, e = decodeContainer(f.msg())
			r.PreviousContainers = append(r.PreviousContainers, c)
		case 5:
			r.Queue = f.str()
		case 6:
			var t NMToken
			t, e = decodeNMToken(f.msg())
			r.PreviousNMTokens = append(r.PreviousNMTokens, t)
		}
		return e
	})
	return r, err
}

// ResourceRequestProto: priority = 1, resource_name = 2, capability = 3, num_containers = 4,
// relax_locality = 5.
func appendResourceRequest(b []byte, r ResourceRequest) []byte {
	name := r.ResourceName
	if name == "" {
		name = "*"
	}
	b = appendBytesField(b, 1, appendPriority(nil, r.Priority))
	b = appendStringField(b, 2, name)
	b = appendBytesField(b, 3, appendResource(nil, r.Capability))
	b = appendInt32Field(b, 4, r.NumContainers)
	return appendBoolField(b, 5, !r.StrictLocality)
}

func decodeResourceRequest(b []byte) (r ResourceRequest, err error) {
	err = walk(b, func(f field) error {
		var e error
		switch f.num {
		case 1:
			r.Priority, e = decodePriority(f.msg())
		case 2:
			r.ResourceName = f.str()
		case 3:
			r.Capability, e = decodeResource(f.msg())
		case 4:
			r.NumContainers = f.int32()
		case 5:
			r.StrictLocality = !f.bool()
		}
		return e
	})
	return r, err
}

// AllocateRequestProto: ask = 1, release = 2, response_id = 4, progress = 5.
func (r AllocateRequest) marshal() []byte {
	var b []byte
	for _, a := range r.Asks {
		b = appendBytesField(b, 1, appendResourceRequest(nil, a))
	}
	for _, id := range r.Releases {
		b = appendBytesField(b, 2, appendContainerID(nil, id))
	}
	b = appendInt32Field(b, 4, r.ResponseID)
	return appendFloatField(b, 5, r.Progress)
}

func decodeAllocateRequest(b []byte) (r AllocateRequest, err error) {
	err = walk(b, func(f field) error {
		var e error
		switch f.num {
		case 1:
			var a ResourceRequest
			a, e = decodeResourceRequest(f.msg())
			r.Asks = append(r.Asks, a)
		case 2:
			var id ContainerID
			id, e = decodeContainerID(f.msg())
			r.Releases = append(r.Releases, id)
		case 4:
			r.ResponseID = f.int32()
		case 5:
			r.Progress = f.float32()
		}
		return e
	})
	return r, err
}

// AllocateResponseProto: a_m_command = 1, response_id = 2, allocated_containers = 3,
// completed_container_statuses = 4, limit = 5, num_cluster_nodes = 7, nm_tokens = 9,
// am_rm_token = 12.
func (r *AllocateResponse) marshal() []byte {
	var b []byte
	if r.Command != 0 {
		b = appendInt32Field(b, 1, int32(r.Command))
	}
	b = appendInt32Field(b, 2, r.ResponseID)
	for _, c := range r.Allocated {
		b = appendBytesField(b, 3, appendContainer(nil, c))
	}
	for _, s := range r.Completed {
		b = appendBytesField(b, 4, appendContainerStatus(nil, s))
	}
	b = appendBytesField(b, 5, appendResource(nil, r.Limit))
	b = appendInt32Field(b, 7, r.ClusterNodes)
	for _, t := range r.NMTokens {
		b = appendBytesField(b, 9, appendNMToken(nil, t))
	}
	if r.AMRMToken != nil {
		b = appendBytesField(b, 12, appendToken(nil, *r.AMRMToken))
	}
	return b
}

func decodeAllocateResponse(b []byte) (*AllocateResponse, error) {
	r := &AllocateResponse{}
	err := walk(b, func(f field) error {
		var e error
		switch f.num {
		case 1:
			r.Command = AMCommand(f.int32())
		case 2:
			r.ResponseID = f.int32()
		case 3:
			var c Container
			c, e = decodeContainer(f.msg())
			r.Allocated = append(r.Allocated, c)
		case 4:
			var s ContainerStatus
			s, e = decodeContainerStatus(f.msg())
			r.Completed = append(r.Completed, s)
		case 5:
			r.Limit, e = decodeResource(f.msg())
		case 7:
			r.ClusterNodes = f.int32()
		case 9:
			var t NMToken
			t, e = decodeNMToken(f.msg())
			r.NMTokens = append(r.NMTokens, t)
		case 12:
			var t Token
			t, e = decodeToken(f.msg())
			r.AMRMToken = &t
		}
		return e
	})
	return r, err
}

// FinishApplicationMasterRequestProto: diagnostics = 1, tracking_url = 2,
// final_application_status = 3.
func (r FinishRequest) marshal() []byte {
	b := appendStringField(nil, 1, r.Diagnostics)
	b = appendStringField(b, 2, r.TrackingURL)
	return appendInt32Field(b, 3, int32(r.Status))
}

func decodeFinishRequest(b []byte) (r FinishRequest, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			r.Diagnostics = f.str()
		case 2:
			r.TrackingURL = f.str()
		case 3:
			r.Status = FinalStatus(f.int32())
		}
		return nil
	})
	return r, err
}
