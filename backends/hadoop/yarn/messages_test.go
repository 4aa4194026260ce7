package yarn

import (
	"encoding/hex"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	testAttempt = AttemptID{App: ApplicationID{ClusterTimestamp: 1700000000123, ID: 7}, Attempt: 1}
	testCID     = ContainerID{Attempt: testAttempt, ID: 2}
	testToken   = Token{Identifier: []byte{1, 2}, Password: []byte{3}, Kind: KindContainerToken, Service: "127.0.0.1:45454"}
	testNode    = NodeID{Host: "nm1.example", Port: 45454}
	testCtr     = Container{ID: testCID, Node: testNode, NodeHTTPAddress: "nm1.example:8042",
		Resource: Resource{MemoryMB: 128, VCores: 1}, Priority: 1, Token: testToken}
)

func TestIDStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{testAttempt.App.String(), "application_1700000000123_0007"},
		{testAttempt.String(), "appattempt_1700000000123_0007_000001"},
		{testCID.String(), "container_1700000000123_0007_01_000002"},
		{ContainerID{Attempt: testAttempt, ID: 17<<40 | 3}.String(), "container_e17_1700000000123_0007_01_000003"},
		{ApplicationID{ClusterTimestamp: 5, ID: 12345}.String(), "application_5_12345"},
		{testNode.String(), "nm1.example:45454"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
	for _, s := range []string{"container_1700000000123_0007_01_000002", "container_e17_1700000000123_0007_01_000003"} {
		id, err := ParseContainerID(s)
		if err != nil || id.String() != s {
			t.Errorf("ParseContainerID(%s) = %v, %v", s, id, err)
		}
	}
	for _, s := range []string{"", "container_1_2_3", "container_x_1_2_3", "application_1_2_3_4", "container_ex_1_2_3_4"} {
		if _, err := ParseContainerID(s); err == nil {
			t.Errorf("ParseContainerID(%q): no error", s)
		}
	}
	if id, err := ParseApplicationID("application_1700000000123_0007"); err != nil || id != testAttempt.App {
		t.Errorf("ParseApplicationID = %v, %v", id, err)
	}
	for _, s := range []string{"application_1", "app_1_2", "application_x_2"} {
		if _, err := ParseApplicationID(s); err == nil {
			t.Errorf("ParseApplicationID(%q): no error", s)
		}
	}
}

// TestGoldenEncodings pins a few encodings worked out by hand from the .proto files.
func TestGoldenEncodings(t *testing.T) {
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		// rpcKind=2, rpcOp=0, callId=-3 as sint32 (zigzag 5), clientId empty, retryCount=-1 (zigzag 1).
		{"connection context header", rpcRequestHeader{CallID: -3, ClientID: []byte{}, RetryCount: -1}.marshal(), "080210001805" + "2200" + "2801"},
		// RpcResponseHeaderProto callId is a uint32: -33 is five bytes.
		{"sasl response header", rpcResponseHeader{CallID: -33, Status: rpcStatusSuccess}.marshal(), "08dfffffff0f" + "1000"},
		// methodName "allocate", declaringClassProtocolName "p", clientProtocolVersion 1.
		{"request header", requestHeader{Method: "allocate", Protocol: "p"}.marshal(), "0a08616c6c6f636174651201701801"},
		// ResourceProto{memory 128, virtual_cores 1}.
		{"resource", appendResource(nil, Resource{MemoryMB: 128, VCores: 1}), "088001" + "1001"},
		// AllocateRequestProto{response_id 3, progress 0.5f}.
		{"allocate heartbeat", AllocateRequest{ResponseID: 3, Progress: 0.5}.marshal(), "2003" + "2d0000003f"},
		// RpcSaslProto{state NEGOTIATE}.
		{"sasl negotiate", saslMessage{State: saslNegotiate}.marshal(), "1001"},
		// FinishApplicationMasterRequestProto{"", "", SUCCEEDED}.
		{"finish", FinishRequest{Status: StatusSucceeded}.marshal(), "0a00" + "1200" + "1801"},
	} {
		if got := hex.EncodeToString(c.got); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestRecordRoundTrips(t *testing.T) {
	rt := func(name string, want, got any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("%s round trip (-want +got):\n%s", name, d)
		}
	}
	c, err := decodeContainer(appendContainer(nil, testCtr))
	rt("container", testCtr, c, err)

	st := ContainerStatus{ID: testCID, State: ContainerComplete, Diagnostics: "exit code 3", ExitStatus: 3}
	s, err := decodeContainerStatus(appendContainerStatus(nil, st))
	rt("container status", st, s, err)
	s, err = decodeContainerStatus(appendContainerID(nil, testCID)) // not a status: defaults
	rt("default exit status", ExitInvalid, s.ExitStatus, err)

	nt := NMToken{Node: testNode, Token: testToken}
	n, err := decodeNMToken(appendNMToken(nil, nt))
	rt("nm token", nt, n, err)

	lc := LaunchContext{
		LocalResources: map[string]LocalResource{
			"worker": {URL: "hdfs://nn:8020/user/me/worker", Size: 1234, Timestamp: 1700000000999, Type: File, Visibility: VisibilityApplication},
			"lib":    {URL: "hdfs://nn/user/me/lib.zip", Size: 5, Timestamp: 6, Type: Archive, Visibility: VisibilityPrivate},
		},
		Environment: map[string]string{"A": "1", "B": ""},
		Commands:    []string{"./worker", "1><LOG_DIR>/stdout"},
		Tokens:      []byte("HDTS\x00\x00\x00"),
	}
	enc, err := appendLaunchContext(nil, lc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeLaunchContext(enc)
	rt("launch context", lc, got, err)

	if _, err := appendLaunchContext(nil, LaunchContext{LocalResources: map[string]LocalResource{"x": {URL: "no-scheme"}}}); err == nil {
		t.Error("a resource URL without scheme was accepted")
	}
	u, err := parseResourceURL("hdfs://nn/p")
	rt("url without port", urlProto{Scheme: "hdfs", Host: "nn", Port: -1, File: "/p"}, u, err)
}

func TestMessageRoundTrips(t *testing.T) {
	rt := func(name string, want, got any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("%s round trip (-want +got):\n%s", name, d)
		}
	}
	reg := RegisterRequest{Host: "am.example", RPCPort: -1, TrackingURL: "http://am/"}
	r1, err := decodeRegisterRequest(reg.marshal())
	rt("register request", reg, r1, err)

	regResp := &RegisterResponse{MaxCapability: Resource{MemoryMB: 8192, VCores: 8}, Queue: "default",
		PreviousContainers: []Container{testCtr}, PreviousNMTokens: []NMToken{{Node: testNode, Token: testToken}}}
	r2, err := decodeRegisterResponse(regResp.marshal())
	rt("register response", regResp, r2, err)

	alloc := AllocateRequest{ResponseID: 4, Progress: 0.25,
		Asks:     []ResourceRequest{{Priority: 1, ResourceName: "*", Capability: Resource{MemoryMB: 128, VCores: 1}, NumContainers: 2}},
		Releases: []ContainerID{testCID}}
	r3, err := decodeAllocateRequest(alloc.marshal())
	rt("allocate request", alloc, r3, err)

	allocResp := &AllocateResponse{ResponseID: 5, Command: AMResync, Allocated: []Container{testCtr},
		Completed: []ContainerStatus{{ID: testCID, State: ContainerComplete, ExitStatus: 0, Diagnostics: ""}},
		NMTokens:  []NMToken{{Node: testNode, Token: testToken}}, Limit: Resource{MemoryMB: 1024, VCores: 3},
		ClusterNodes: 1, AMRMToken: &testToken}
	r4, err := decodeAllocateResponse(allocResp.marshal())
	rt("allocate response", allocResp, r4, err)

	fin := FinishRequest{Status: StatusFailed, Diagnostics: "2 of 3 tasks failed", TrackingURL: "http://x"}
	r5, err := decodeFinishRequest(fin.marshal())
	rt("finish request", fin, r5, err)

	start := []StartContainerRequest{{Launch: LaunchContext{Commands: []string{"true"}}, ContainerToken: testToken}}
	enc, err := marshalStartContainers(start)
	if err != nil {
		t.Fatal(err)
	}
	r6, err := decodeStartContainers(enc)
	rt("start containers", start, r6, err)

	failure := ContainerFailure{ID: testCID, Class: "org.apache.hadoop.yarn.exceptions.YarnException", Message: "no"}
	var resp []byte
	resp = appendBytesField(resp, 2, appendContainerID(nil, testCID))
	resp = appendBytesField(resp, 3, appendContainerFailure(nil, failure))
	ok, failed, err := decodeBulkResponse(resp, 2, 3)
	rt("start response", []any{[]ContainerID{testCID}, []ContainerFailure{failure}}, []any{ok, failed}, err)

	hdr := rpcRequestHeader{CallID: -33, ClientID: []byte{}, RetryCount: -1}
	h, err := decodeRPCRequestHeader(hdr.marshal())
	rt("rpc request header", hdr, h, err)
	rh := rpcResponseHeader{CallID: -3, Status: rpcStatusFatal, ExceptionClass: "x.Y", ErrorMsg: "boom", ErrorDetail: 15}
	h2, err := decodeRPCResponseHeader(rh.marshal())
	rt("rpc response header", rh, h2, err)
	cc := connectionContext{EffectiveUser: "me", Protocol: ProtocolAM}
	c2, err := decodeConnectionContext(cc.marshal())
	rt("connection context", cc, c2, err)
	sm := saslMessage{State: saslNegotiate, Token: []byte("t"), Auths: []saslAuth{{Method: "TOKEN", Mechanism: "DIGEST-MD5", Protocol: "", ServerID: "default", Challenge: []byte("c")}}}
	s2, err := decodeSASLMessage(sm.marshal())
	rt("sasl message", sm, s2, err)
}

// TestDecodeSkipsUnknownFields checks that fields a newer Hadoop adds are skipped.
func TestDecodeSkipsUnknownFields(t *testing.T) {
	b := appendResource(nil, Resource{MemoryMB: 64, VCores: 2})
	b = appendBytesField(b, 3, []byte("resource_value_map entry")) // ResourceProto field 3 (3.x)
	b = appendFloatField(b, 99, 1.5)
	b = appendInt64Field(b, 100, -1)
	r, err := decodeResource(b)
	if err != nil || r != (Resource{MemoryMB: 64, VCores: 2}) {
		t.Fatalf("decodeResource = %+v, %v", r, err)
	}
	if _, err := decodeResource([]byte{0x0a, 0x05, 0x01}); err == nil {
		t.Fatal("truncated message: no error")
	}
}
