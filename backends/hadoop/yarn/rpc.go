package yarn

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"sync"
	"time"
)

// RPCOptions configures an RPCClient.
type RPCOptions struct {
	// Protocol is the server-side protocol interface, sent in the connection context and with
	// each call, e.g. "org.apache.hadoop.yarn.api.ApplicationMasterProtocolPB".
	Protocol string
	// Token, if set, authenticates the connection with SASL (TOKEN, DIGEST-MD5). Without it the
	// connection uses simple authentication as User, which servers that need a token refuse.
	Token *Token
	// User is the user for simple authentication; empty means $HADOOP_USER_NAME, else the
	// operating system's user. With a token the token names the user.
	User string
}

// RPCClient is a Hadoop RPC (protocol version 9) client of one protocol on one server, over one
// TCP connection that it opens on the first call and reopens on the call after a failure. Calls
// are serialized: one is on the wire at a time. It is safe for concurrent use.
type RPCClient struct {
	addr     string
	opts     RPCOptions // Token is guarded by mu
	clientID [16]byte

	sem    chan struct{} // serializes calls; its holder owns conn, rd and callID
	conn   net.Conn
	rd     *bufio.Reader
	callID int32

	mu     sync.Mutex
	closed bool
	live   net.Conn // conn, for Close to interrupt a call
}

// maxFrame bounds a response's length, as Hadoop's ipc.maximum.response.length (128 MB) does.
const maxFrame = 128 << 20

// NewRPCClient returns a client for the server at addr (host:port). It does not connect yet.
func NewRPCClient(addr string, opts RPCOptions) *RPCClient {
	c := &RPCClient{addr: addr, opts: opts, sem: make(chan struct{}, 1)}
	if _, err := rand.Read(c.clientID[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	c.clientID[6] = c.clientID[6]&0x0f | 0x40 // a version 4 UUID, as Java's ClientId
	c.clientID[8] = c.clientID[8]&0x3f | 0x80
	return c
}

// Addr returns the server address.
func (c *RPCClient) Addr() string { return c.addr }

// SetToken replaces the token used for connections opened from now on (e.g. after the
// ResourceManager rolled the AMRMToken over).
func (c *RPCClient) SetToken(t Token) {
	c.mu.Lock()
	c.opts.Token = &t
	c.mu.Unlock()
}

// Call sends one request (an encoded protobuf message) to method and returns the encoded
// response. It honours ctx's deadline and cancellation: when ctx ends mid-call the connection is
// closed and the error wraps ctx.Err(). An exception from the server is a *RemoteError; after
// any other error the connection is dropped and the next call reconnects. Call never retries.
func (c *RPCClient) Call(ctx context.Context, method string, req []byte) ([]byte, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("yarn: %s on %s: %w", method, c.addr, ctx.Err())
	}
	defer func() { <-c.sem }()
	if c.isClosed() {
		return nil, ErrClosed
	}
	if c.conn == nil {
		if err := c.connect(ctx); err != nil {
			return nil, err
		}
	}
	stop := watch(ctx, c.conn)
	resp, err := c.roundTrip(method, req)
	stop()
	if err != nil {
		var re *RemoteError
		if !errors.As(err, &re) || re.Fatal {
			c.drop()
		}
		if cerr := ctxErr(ctx); cerr != nil && re == nil {
			return nil, fmt.Errorf("yarn: %s on %s: %w", method, c.addr, cerr)
		}
		if re == nil && c.isClosed() {
			return nil, fmt.Errorf("yarn: %s on %s: %w", method, c.addr, ErrClosed)
		}
		return nil, err
	}
	return resp, nil
}

// Close closes the connection, interrupting a call under way. Calls after Close fail with
// ErrClosed.
func (c *RPCClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.live != nil {
		return c.live.Close()
	}
	return nil
}

func (c *RPCClient) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// drop closes the connection after a failure; the next call reconnects.
func (c *RPCClient) drop() {
	if c.conn == nil {
		return
	}
	c.conn.Close()
	c.mu.Lock()
	if c.live == c.conn {
		c.live = nil
	}
	c.mu.Unlock()
	c.conn, c.rd = nil, nil
}

// watch makes conn's I/O follow ctx: its deadline, and an immediate timeout when it is
// cancelled. The returned function stops watching.
func watch(ctx context.Context, conn net.Conn) (stop func()) {
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	s := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return func() { s() }
}

// ctxErr is ctx.Err(), or DeadlineExceeded once the deadline has passed: the connection's
// deadline, set to ctx's, may fire before ctx's own timer does.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *RPCClient) roundTrip(method string, req []byte) ([]byte, error) {
	id := c.callID
	c.callID++
	if c.callID < 0 {
		c.callID = 0
	}
	hdr := rpcRequestHeader{CallID: id, ClientID: c.clientID[:], RetryCount: -1}
	if err := c.writePacket(hdr.marshal(), requestHeader{Method: method, Protocol: c.opts.Protocol}.marshal(), req); err != nil {
		// The server may have refused the connection (e.g. simple authentication to a server
		// that needs a token) with a fatal response and closed it: report that if it arrived.
		if rh, _, rerr := c.readResponse(); rerr == nil && rh.Status != rpcStatusSuccess {
			return nil, c.remoteError(method, rh)
		}
		return nil, fmt.Errorf("yarn: %s on %s: %w", method, c.addr, err)
	}
	rh, body, err := c.readResponse()
	if err != nil {
		return nil, fmt.Errorf("yarn: %s on %s: %w", method, c.addr, err)
	}
	if rh.Status != rpcStatusSuccess {
		return nil, c.remoteError(method, rh)
	}
	if rh.CallID != id {
		return nil, fmt.Errorf("yarn: %s on %s: response to call %d, want %d", method, c.addr, rh.CallID, id)
	}
	msg, _, err := consumeDelimited(body)
	if err != nil {
		return nil, fmt.Errorf("yarn: %s on %s: response: %w", method, c.addr, err)
	}
	return msg, nil
}

func (c *RPCClient) remoteError(method string, rh rpcResponseHeader) *RemoteError {
	return &RemoteError{Addr: c.addr, Method: method, Class: rh.ExceptionClass, Message: rh.ErrorMsg,
		Fatal: rh.Status == rpcStatusFatal, Code: rh.ErrorDetail}
}

// writePacket writes one RPC packet: a 4-byte big-endian length, then each message
// varint-delimited.
func (c *RPCClient) writePacket(msgs ...[]byte) error {
	b := make([]byte, 4, 64)
	for _, m := range msgs {
		b = appendDelimited(b, m)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	_, err := c.conn.Write(b)
	return err
}

// readResponse reads one response packet: its header and the rest of the packet.
func (c *RPCClient) readResponse() (rpcResponseHeader, []byte, error) {
	var lb [4]byte
	if _, err := io.ReadFull(c.rd, lb[:]); err != nil {
		if err == io.EOF {
			err = errors.New("server closed the connection")
		}
		return rpcResponseHeader{}, nil, err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n > maxFrame {
		return rpcResponseHeader{}, nil, fmt.Errorf("response of %d bytes is over the %d limit (not a Hadoop RPC server?)", n, maxFrame)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.rd, p); err != nil {
		return rpcResponseHeader{}, nil, err
	}
	hb, rest, err := consumeDelimited(p)
	if err != nil {
		return rpcResponseHeader{}, nil, fmt.Errorf("response header: %w", err)
	}
	rh, err := decodeRPCResponseHeader(hb)
	if err != nil {
		return rpcResponseHeader{}, nil, fmt.Errorf("response header: %w", err)
	}
	return rh, rest, nil
}

// connect opens the connection: connection header, SASL if there is a token, connection context.
func (c *RPCClient) connect(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("yarn: connect to %s: %w", c.addr, err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		conn.Close()
		return ErrClosed
	}
	c.live = conn
	tok := c.opts.Token
	c.mu.Unlock()
	c.conn, c.rd = conn, bufio.NewReader(conn)
	stop := watch(ctx, conn)
	err = c.handshake(tok)
	stop()
	if err != nil {
		c.drop()
		var re *RemoteError
		if cerr := ctxErr(ctx); cerr != nil && !errors.As(err, &re) {
			return fmt.Errorf("yarn: connect to %s: %w", c.addr, cerr)
		}
		return err
	}
	return nil
}

const (
	authNone = 0
	authSASL = 0xDF // -33
)

func (c *RPCClient) handshake(tok *Token) error {
	auth := byte(authNone)
	if tok != nil {
		auth = authSASL
	}
	// "hrpc", version 9, service class 0, auth protocol.
	if _, err := c.conn.Write([]byte{'h', 'r', 'p', 'c', 9, 0, auth}); err != nil {
		return fmt.Errorf("yarn: connect to %s: %w", c.addr, err)
	}
	simple := tok == nil
	if !simple {
		var err error
		if simple, err = c.saslConnect(*tok); err != nil {
			return err
		}
	}
	cc := connectionContext{Protocol: c.opts.Protocol}
	if simple {
		// With a token the token names the user; sending one too would ask to impersonate.
		cc.EffectiveUser = c.opts.User
		if cc.EffectiveUser == "" {
			cc.EffectiveUser = defaultUser()
		}
	}
	hdr := rpcRequestHeader{CallID: callIDConnectionContext, ClientID: c.clientID[:], RetryCount: -1}
	if err := c.writePacket(hdr.marshal(), cc.marshal()); err != nil {
		return fmt.Errorf("yarn: connect to %s: %w", c.addr, err)
	}
	return nil
}

// saslConnect runs Hadoop's SASL exchange on call id -33: NEGOTIATE, then INITIATE with the
// DIGEST-MD5 response to the challenge that came with the server's TOKEN auth, then
// CHALLENGE/RESPONSE rounds until SUCCESS. It reports simple = true when the server chose
// simple authentication instead.
func (c *RPCClient) saslConnect(tok Token) (simple bool, err error) {
	send := func(m saslMessage) error {
		hdr := rpcRequestHeader{CallID: callIDSASL, ClientID: []byte{}, RetryCount: -1}
		if err := c.writePacket(hdr.marshal(), m.marshal()); err != nil {
			return fmt.Errorf("yarn: connect to %s: sasl: %w", c.addr, err)
		}
		return nil
	}
	if err := send(saslMessage{State: saslNegotiate}); err != nil {
		return false, err
	}
	var mech *digestMD5
	for {
		rh, body, err := c.readResponse()
		if err != nil {
			return false, fmt.Errorf("yarn: connect to %s: sasl: %w", c.addr, err)
		}
		if rh.Status != rpcStatusSuccess {
			return false, c.remoteError("connect", rh)
		}
		if rh.CallID != callIDSASL {
			return false, fmt.Errorf("yarn: connect to %s: sasl: response on call %d, want %d", c.addr, rh.CallID, callIDSASL)
		}
		mb, _, err := consumeDelimited(body)
		if err != nil {
			return false, fmt.Errorf("yarn: connect to %s: sasl: %w", c.addr, err)
		}
		m, err := decodeSASLMessage(mb)
		if err != nil {
			return false, fmt.Errorf("yarn: connect to %s: sasl: %w", c.addr, err)
		}
		switch m.State {
		case saslNegotiate:
			var chosen *saslAuth
			offered := ""
			for i, a := range m.Auths {
				offered += " " + a.Method + "/" + a.Mechanism
				if a.Method == "TOKEN" && a.Mechanism == "DIGEST-MD5" {
					chosen = &m.Auths[i]
					break
				}
			}
			if chosen == nil {
				for _, a := range m.Auths {
					if a.Method == "SIMPLE" {
						// As Hadoop's client does: say so and go on without waiting.
						return true, send(saslMessage{State: saslInitiate, Auths: []saslAuth{{Method: "SIMPLE", Mechanism: a.Mechanism}}})
					}
				}
				return false, fmt.Errorf("yarn: connect to %s: %w: server offers%s, not TOKEN/DIGEST-MD5", c.addr, ErrUnauthorized, offered)
			}
			mech = newTokenDigest(tok, chosen.Protocol, chosen.ServerID)
			var resp []byte
			if chosen.Challenge != nil {
				if resp, err = mech.respond(chosen.Challenge); err != nil {
					return false, fmt.Errorf("yarn: connect to %s: %w", c.addr, err)
				}
			}
			reply := *chosen
			reply.Challenge = nil
			if err := send(saslMessage{State: saslInitiate, Token: resp, Auths: []saslAuth{reply}}); err != nil {
				return false, err
			}
		case saslChallenge:
			if mech == nil {
				return false, fmt.Errorf("yarn: connect to %s: sasl: challenge before negotiation", c.addr)
			}
			var resp []byte
			if mech.rspauth == "" {
				resp, err = mech.respond(m.Token)
			} else {
				err = mech.verify(m.Token)
			}
			if err != nil {
				return false, fmt.Errorf("yarn: connect to %s: %w", c.addr, err)
			}
			if err := send(saslMessage{State: saslResponse, Token: resp}); err != nil {
				return false, err
			}
		case saslSuccess:
			if mech == nil {
				return true, nil // the server needs no authentication
			}
			if m.Token != nil {
				if err := mech.verify(m.Token); err != nil {
					return false, fmt.Errorf("yarn: connect to %s: %w", c.addr, err)
				}
			}
			return false, nil
		default:
			return false, fmt.Errorf("yarn: connect to %s: sasl: unexpected state %d", c.addr, m.State)
		}
	}
}

// defaultUser is the user for simple authentication: $HADOOP_USER_NAME, else the OS user.
func defaultUser() string {
	if u := os.Getenv("HADOOP_USER_NAME"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}
