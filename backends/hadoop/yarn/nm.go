package yarn

import (
	"context"
	"fmt"
)

// ProtocolNM is the ContainerManagementProtocol's name on the wire.
const ProtocolNM = "org.apache.hadoop.yarn.api.ContainerManagementProtocolPB"

// NMClient is an ApplicationMaster's client of one NodeManager's ContainerManagementProtocol.
// It is safe for concurrent use; calls are serialized on one connection.
type NMClient struct {
	rpc *RPCClient
}

// NewNMClient returns a client of the NodeManager at addr (the container's NodeID, host:port),
// authenticating with the NMToken that the ResourceManager issued for that node. AMClient's
// NodeManager method picks the token and keeps the clients. It does not connect yet.
func NewNMClient(addr string, nmToken Token) *NMClient {
	return &NMClient{rpc: NewRPCClient(addr, RPCOptions{Protocol: ProtocolNM, Token: &nmToken})}
}

// Close closes the connection.
func (c *NMClient) Close() error { return c.rpc.Close() }

// StartContainerRequest starts one allocated container.
type StartContainerRequest struct {
	Launch LaunchContext
	// ContainerToken is the allocated Container's Token; it names the container.
	ContainerToken Token
}

// ContainerFailure is the NodeManager's refusal of one container in a bulk call.
type ContainerFailure struct {
	ID ContainerID
	// Class and Message are the Java exception's.
	Class, Message string
}

// Error gives the container, the exception class and the message without its stack trace.
func (f ContainerFailure) Error() string {
	return fmt.Sprintf("yarn: container %s: %s: %s", f.ID, f.Class, shortMessage(f.Message))
}

// StartContainers starts containers on this NodeManager. The error is for the call as a whole;
// containers that the NodeManager refused (e.g. a bad local resource URL or an expired
// container token) come back as failures, and the others have started.
func (c *NMClient) StartContainers(ctx context.Context, reqs ...StartContainerRequest) ([]ContainerFailure, error) {
	req, err := marshalStartContainers(reqs)
	if err != nil {
		return nil, err
	}
	b, err := c.rpc.Call(ctx, "startContainers", req)
	if err != nil {
		return nil, err
	}
	_, failed, err := decodeBulkResponse(b, 2, 3)
	if err != nil {
		return nil, fmt.Errorf("yarn: startContainers: %w", err)
	}
	return failed, nil
}

// StartContainer starts one allocated container; a refusal is returned as a ContainerFailure.
func (c *NMClient) StartContainer(ctx context.Context, ctr Container, launch LaunchContext) error {
	failed, err := c.StartContainers(ctx, StartContainerRequest{Launch: launch, ContainerToken: ctr.Token})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return failed[0]
	}
	return nil
}

// StopContainers stops (kills) containers on this NodeManager; refusals come back as failures.
// Their completion is reported by the ResourceManager's Allocate as usual.
func (c *NMClient) StopContainers(ctx context.Context, ids ...ContainerID) ([]ContainerFailure, error) {
	b, err := c.rpc.Call(ctx, "stopContainers", marshalContainerIDs(ids))
	if err != nil {
		return nil, err
	}
	_, failed, err := decodeBulkResponse(b, 1, 2)
	if err != nil {
		return nil, fmt.Errorf("yarn: stopContainers: %w", err)
	}
	return failed, nil
}

// ContainerStatuses asks the NodeManager for containers' statuses.
func (c *NMClient) ContainerStatuses(ctx context.Context, ids ...ContainerID) ([]ContainerStatus, []ContainerFailure, error) {
	b, err := c.rpc.Call(ctx, "getContainerStatuses", marshalContainerIDs(ids))
	if err != nil {
		return nil, nil, err
	}
	var statuses []ContainerStatus
	var failed []ContainerFailure
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			s, e := decodeContainerStatus(f.msg())
			statuses = append(statuses, s)
			return e
		case 2:
			cf, e := decodeContainerFailure(f.msg())
			failed = append(failed, cf)
			return e
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("yarn: getContainerStatuses: %w", err)
	}
	return statuses, failed, nil
}

// ---- messages (yarn_service_protos.proto) ----

// StartContainersRequestProto: start_container_request = 1, each a StartContainerRequestProto
// {container_launch_context = 1, container_token = 2}.
func marshalStartContainers(reqs []StartContainerRequest) ([]byte, error) {
	var b []byte
	for i, r := range reqs {
		lc, err := appendLaunchContext(nil, r.Launch)
		if err != nil {
			return nil, fmt.Errorf("yarn: start container %d: %w", i, err)
		}
		e := appendBytesField(nil, 1, lc)
		e = appendBytesField(e, 2, appendToken(nil, r.ContainerToken))
		b = appendBytesField(b, 1, e)
	}
	return b, nil
}

func decodeStartContainers(b []byte) (reqs []StartContainerRequest, err error) {
	err = walk(b, func(f field) error {
		if f.num != 1 {
			return nil
		}
		var r StartContainerRequest
		if err := walk(f.msg(), func(g field) error {
			var e error
			switch g.num {
			case 1:
				r.Launch, e = decodeLaunchContext(g.msg())
			case 2:
				r.ContainerToken, e = decodeToken(g.msg())
			}
			return e
		}); err != nil {
			return err
		}
		reqs = append(reqs, r)
		return nil
	})
	return reqs, err
}

// StopContainersRequestProto and GetContainerStatusesRequestProto: container_id = 1.
func marshalContainerIDs(ids []ContainerID) []byte {
	var b []byte
	for _, id := range ids {
		b = appendBytesField(b, 1, appendContainerID(nil, id))
	}
	return b
}

// ContainerExceptionMapProto: container_id = 1, exception = 2.
func decodeContainerFailure(b []byte) (cf ContainerFailure, err error) {
	err = walk(b, func(f field) error {
		var e error
		switch f.num {
		case 1:
			cf.ID, e = decodeContainerID(f.msg())
		case 2:
			cf.Class, cf.Message, e = decodeSerializedException(f.msg())
		}
		return e
	})
	return cf, err
}

func appendContainerFailure(b []byte, cf ContainerFailure) []byte {
	b = appendBytesField(b, 1, appendContainerID(nil, cf.ID))
	return appendBytesField(b, 2, appendSerializedException(nil, cf.Class, cf.Message))
}

// decodeBulkResponse reads StartContainersResponseProto (succeeded_requests = 2,
// failed_requests = 3) or StopContainersResponseProto (1 and 2).
func decodeBulkResponse(b []byte, okField, failedField int) (ok []ContainerID, failed []ContainerFailure, err error) {
	err = walk(b, func(f field) error {
		switch int(f.num) {
		case okField:
			id, e := decodeContainerID(f.msg())
			ok = append(ok, id)
			return e
		case failedField:
			cf, e := decodeContainerFailure(f.msg())
			failed = append(failed, cf)
			return e
		}
		return nil
	})
	return ok, failed, err
}
