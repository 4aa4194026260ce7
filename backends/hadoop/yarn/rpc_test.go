package yarn

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer is a Hadoop RPC server of just enough fidelity to test the client: connection
// header, SASL DIGEST-MD5 with a token, connection context, calls.
type fakeServer struct {
	t        *testing.T
	ln       net.Listener
	password []byte // the token password the server expects; nil: no SASL, simple only
	handle   func(method string, req []byte) ([]byte, *rpcResponseHeader)

	conns    atomic.Int32
	mu       sync.Mutex
	contexts []connectionContext
	methods  []string
}

func newFakeServer(t *testing.T, password []byte, handle func(string, []byte) ([]byte, *rpcResponseHeader)) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, password: password, handle: handle}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go s.serve(c)
		}
	}()
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func readPacket(r io.Reader) ([][]byte, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	p := make([]byte, binary.BigEndian.Uint32(lb[:]))
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	var msgs [][]byte
	for len(p) > 0 {
		m, rest, err := consumeDelimited(p)
		if err != nil {
			return nil, err
		}
		msgs, p = append(msgs, m), rest
	}
	return msgs, nil
}

func writePacket(w io.Writer, msgs ...[]byte) error {
	b := make([]byte, 4)
	for _, m := range msgs {
		b = appendDelimited(b, m)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	_, err := w.Write(b)
	return err
}

const fakeChallenge = `realm="default",nonce="c2VydmVyLW5vbmNl",qop="auth",charset=utf-8,algorithm=md5-sess`

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	var h [7]byte
	if _, err := io.ReadFull(r, h[:]); err != nil || string(h[:4]) != "hrpc" || h[4] != 9 || h[5] != 0 {
		return
	}
	fatal := func(class, msg string) {
		writePacket(c, rpcResponseHeader{CallID: -1, Status: rpcStatusFatal, ExceptionClass: class, ErrorMsg: msg, ErrorDetail: 15}.marshal())
	}
	switch {
	case s.password != nil && h[6] != authSASL:
		fatal("org.apache.hadoop.security.AccessControlException", "SIMPLE authentication is not enabled.  Available:[TOKEN]")
		return
	case h[6] == authSASL:
		if !s.sasl(c, r) {
			return
		}
	}
	msgs, err := readPacket(r)
	if err != nil || len(msgs) != 2 {
		return
	}
	hdr, _ := decodeRPCRequestHeader(msgs[0])
	if hdr.CallID != callIDConnectionContext {
		s.t.Errorf("first packet after auth on call %d, want the connection context", hdr.CallID)
		return
	}
	cc, _ := decodeConnectionContext(msgs[1])
	s.mu.Lock()
	s.contexts = append(s.contexts, cc)
	s.mu.Unlock()
	for {
		msgs, err := readPacket(r)
		if err != nil {
			return
		}
		if len(msgs) != 3 {
			s.t.Errorf("call packet has %d messages, want 3", len(msgs))
			return
		}
		hdr, _ := decodeRPCRequestHeader(msgs[0])
		rh, _ := decodeRequestHeader(msgs[1])
		if len(hdr.ClientID) != 16 || rh.Protocol != cc.Protocol {
			s.t.Errorf("call header %+v %+v", hdr, rh)
		}
		s.mu.Lock()
		s.methods = append(s.methods, rh.Method)
		s.mu.Unlock()
		resp, exc := s.handle(rh.Method, msgs[2])
		if exc != nil {
			exc.CallID = hdr.CallID
			writePacket(c, exc.marshal())
			if exc.Status == rpcStatusFatal {
				return
			}
			continue
		}
		writePacket(c, rpcResponseHeader{CallID: hdr.CallID, Status: rpcStatusSuccess}.marshal(), resp)
	}
}

func (s *fakeServer) sasl(c net.Conn, r io.Reader) bool {
	reply := func(m saslMessage) {
		writePacket(c, rpcResponseHeader{CallID: callIDSASL, Status: rpcStatusSuccess}.marshal(), m.marshal())
	}
	msgs, err := readPacket(r)
	if err != nil || len(msgs) != 2 {
		return false
	}
	if m, _ := decodeSASLMessage(msgs[1]); m.State != saslNegotiate {
		s.t.Errorf("first SASL message in state %d, want NEGOTIATE", m.State)
		return false
	}
	reply(saslMessage{State: saslNegotiate, Auths: []saslAuth{
		{Method: "KERBEROS", Mechanism: "GSSAPI", Protocol: "rm", ServerID: "host"},
		{Method: "TOKEN", Mechanism: "DIGEST-MD5", Protocol: "", ServerID: "default", Challenge: []byte(fakeChallenge)},
	}})
	msgs, err = readPacket(r)
	if err != nil || len(msgs) != 2 {
		return false
	}
	m, _ := decodeSASLMessage(msgs[1])
	if m.State != saslInitiate || len(m.Auths) != 1 || m.Auths[0].Method != "TOKEN" {
		s.t.Errorf("INITIATE = %+v", m)
		return false
	}
	dir, err := parseDirectives(string(m.Token))
	if err != nil {
		s.t.Error(err)
		return false
	}
	// The server side of the digest: the same computation with the password it knows.
	want := &digestMD5{username: dir["username"], password: base64.StdEncoding.EncodeToString(s.password),
		digestURI: "/default", cnonce: dir["cnonce"]}
	wantResp, _ := want.respond([]byte(fakeChallenge))
	wdir, _ := parseDirectives(string(wantResp))
	if dir["response"] != wdir["response"] || dir["digest-uri"] != "/default" || dir["realm"] != "default" {
		writePacket(c, rpcResponseHeader{CallID: callIDSASL, Status: rpcStatusFatal,
			ExceptionClass: "javax.security.sasl.SaslException", ErrorMsg: "DIGEST-MD5: digest response format violation. Mismatched response.", ErrorDetail: 15}.marshal())
		return false
	}
	reply(saslMessage{State: saslSuccess, Token: []byte("rspauth=" + want.rspauth)})
	return true
}

func amHandler(t *testing.T) func(string, []byte) ([]byte, *rpcResponseHeader) {
	return func(method string, req []byte) ([]byte, *rpcResponseHeader) {
		switch method {
		case "registerApplicationMaster":
			r, err := decodeRegisterRequest(req)
			if err != nil || r.Host != "am-host" {
				t.Errorf("register request %+v, %v", r, err)
			}
			return (&RegisterResponse{MaxCapability: Resource{MemoryMB: 4096, VCores: 4}, Queue: "default"}).marshal(), nil
		case "allocate":
			r, _ := decodeAllocateRequest(req)
			resp := &AllocateResponse{ResponseID: r.ResponseID + 1}
			if len(r.Asks) > 0 {
				resp.Allocated = []Container{testCtr}
				resp.NMTokens = []NMToken{{Node: testNode, Token: Token{Identifier: []byte("nm"), Password: []byte("nmpw"), Kind: KindNMToken}}}
			}
			return resp.marshal(), nil
		case "finishApplicationMaster":
			return appendBoolField(nil, 1, true), nil
		case "notRegistered":
			return nil, &rpcResponseHeader{Status: rpcStatusError, ErrorDetail: 1,
				ExceptionClass: "org.apache.hadoop.yarn.exceptions.ApplicationMasterNotRegisteredException",
				ErrorMsg:       "Application Master is trying to allocate before registering\n\tat org.apache..."}
		case "slow":
			time.Sleep(300 * time.Millisecond)
			return nil, nil
		}
		return nil, &rpcResponseHeader{Status: rpcStatusError, ExceptionClass: "org.apache.hadoop.ipc.RpcNoSuchMethodException", ErrorMsg: "Unknown method " + method}
	}
}

func TestAMClientOverSASL(t *testing.T) {
	amrm := Token{Identifier: []byte("attempt-1"), Password: []byte("s3cret"), Kind: KindAMRMToken}
	s := newFakeServer(t, amrm.Password, amHandler(t))
	am := NewAMClient(s.addr(), amrm)
	defer am.Close()
	ctx := context.Background()

	reg, err := am.Register(ctx, RegisterRequest{Host: "am-host", RPCPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	if reg.MaxCapability.MemoryMB != 4096 {
		t.Errorf("max capability %+v", reg.MaxCapability)
	}
	if _, err := am.NodeManager(testNode); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("NodeManager before any NMToken: %v", err)
	}
	resp, err := am.Allocate(ctx, AllocateRequest{Asks: []ResourceRequest{{Priority: 1, Capability: Resource{MemoryMB: 128, VCores: 1}, NumContainers: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.ResponseID != 1 || len(resp.Allocated) != 1 || resp.Allocated[0].ID != testCID {
		t.Errorf("allocate response %+v", resp)
	}
	if tok, ok := am.NMToken(testNode); !ok || string(tok.Password) != "nmpw" {
		t.Errorf("NMToken = %+v, %v", tok, ok)
	}
	if nm, err := am.NodeManager(testNode); err != nil || nm.rpc.Addr() != "nm1.example:45454" {
		t.Errorf("NodeManager = %v, %v", nm, err)
	}
	_, err = am.rpc.Call(ctx, "notRegistered", nil)
	if !errors.Is(err, ErrNotRegistered) {
		t.Errorf("err = %v, want ErrNotRegistered", err)
	}
	if err == nil || strings.Contains(err.Error(), "\tat ") || !strings.Contains(err.Error(), "ApplicationMasterNotRegisteredException: Application Master is trying") {
		t.Errorf("error text %q", err)
	}
	ok, err := am.Finish(ctx, FinishRequest{Status: StatusSucceeded})
	if err != nil || !ok {
		t.Fatalf("Finish = %v, %v", ok, err)
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (a non-fatal remote error keeps the connection)", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.contexts) != 1 || s.contexts[0].Protocol != ProtocolAM || s.contexts[0].EffectiveUser != "" {
		t.Errorf("connection contexts %+v (with a token no user is sent)", s.contexts)
	}
}

func TestRPCWrongPassword(t *testing.T) {
	s := newFakeServer(t, []byte("right"), amHandler(t))
	c := NewRPCClient(s.addr(), RPCOptions{Protocol: ProtocolAM, Token: &Token{Identifier: []byte("id"), Password: []byte("wrong")}})
	defer c.Close()
	_, err := c.Call(context.Background(), "allocate", nil)
	var re *RemoteError
	if !errors.As(err, &re) || !re.Fatal || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want a fatal SaslException matching ErrUnauthorized", err)
	}
}

func TestRPCSimpleAuth(t *testing.T) {
	s := newFakeServer(t, nil, amHandler(t))
	c := NewRPCClient(s.addr(), RPCOptions{Protocol: "p", User: "alice"})
	defer c.Close()
	if _, err := c.Call(context.Background(), "allocate", nil); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.contexts) != 1 || s.contexts[0].EffectiveUser != "alice" {
		t.Errorf("contexts %+v", s.contexts)
	}

	// A server that needs a token refuses simple authentication.
	s2 := newFakeServer(t, []byte("pw"), amHandler(t))
	c2 := NewRPCClient(s2.addr(), RPCOptions{Protocol: "p"})
	defer c2.Close()
	if _, err := c2.Call(context.Background(), "allocate", nil); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("simple auth to a token server: %v", err)
	}
}

func TestRPCDeadlineAndReconnect(t *testing.T) {
	tok := Token{Identifier: []byte("id"), Password: []byte("pw")}
	s := newFakeServer(t, tok.Password, amHandler(t))
	c := NewRPCClient(s.addr(), RPCOptions{Protocol: "p", Token: &tok})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Call(ctx, "slow", nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 250*time.Millisecond {
		t.Fatalf("err = %v after %v, want DeadlineExceeded at once", err, time.Since(start))
	}
	if _, err := c.Call(context.Background(), "allocate", nil); err != nil {
		t.Fatalf("call after a timeout: %v", err)
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the timed-out one is dropped)", n)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	go func() { time.Sleep(30 * time.Millisecond); ccancel() }()
	if _, err := c.Call(cctx, "slow", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
	// Close interrupts a call under way.
	go func() { time.Sleep(30 * time.Millisecond); c.Close() }()
	if _, err := c.Call(context.Background(), "slow", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call interrupted by Close: %v", err)
	}
	if _, err := c.Call(context.Background(), "allocate", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v", err)
	}
}

func TestNMClientStartContainers(t *testing.T) {
	nmTok := Token{Identifier: []byte("nm"), Password: []byte("nmpw"), Kind: KindNMToken}
	var got []StartContainerRequest
	s := newFakeServer(t, nmTok.Password, func(method string, req []byte) ([]byte, *rpcResponseHeader) {
		switch method {
		case "startContainers":
			got, _ = decodeStartContainers(req)
			var b []byte
			b = appendBytesField(b, 3, appendContainerFailure(nil, ContainerFailure{ID: testCID,
				Class: "org.apache.hadoop.yarn.exceptions.YarnException", Message: "Resource hdfs://x changed on src filesystem"}))
			return b, nil
		case "stopContainers":
			return appendBytesField(nil, 1, appendContainerID(nil, testCID)), nil
		case "getContainerStatuses":
			return appendBytesField(nil, 1, appendContainerStatus(nil, ContainerStatus{ID: testCID, State: ContainerRunning, ExitStatus: ExitInvalid})), nil
		}
		return nil, &rpcResponseHeader{Status: rpcStatusError, ExceptionClass: "x", ErrorMsg: method}
	})
	nm := NewNMClient(s.addr(), nmTok)
	defer nm.Close()
	ctx := context.Background()
	launch := LaunchContext{Commands: []string{"sh", "-c", "'echo hi'"}, Environment: map[string]string{"K": "V"}}
	err := nm.StartContainer(ctx, testCtr, launch)
	var cf ContainerFailure
	if !errors.As(err, &cf) || cf.ID != testCID || !strings.Contains(err.Error(), "changed on src filesystem") {
		t.Fatalf("StartContainer err = %v", err)
	}
	if len(got) != 1 || got[0].ContainerToken.Kind != KindContainerToken || got[0].Launch.Environment["K"] != "V" {
		t.Errorf("server got %+v", got)
	}
	if failed, err := nm.StopContainers(ctx, testCID); err != nil || len(failed) != 0 {
		t.Errorf("StopContainers = %v, %v", failed, err)
	}
	st, failed, err := nm.ContainerStatuses(ctx, testCID)
	if err != nil || len(failed) != 0 || len(st) != 1 || st[0].State != ContainerRunning {
		t.Errorf("ContainerStatuses = %+v, %v, %v", st, failed, err)
	}
}
