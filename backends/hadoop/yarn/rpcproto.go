package yarn

// This file has the Hadoop RPC envelope messages (RpcHeader.proto, IpcConnectionContext.proto,
// ProtobufRpcEngine2.proto).

// Special call ids (Hadoop's RpcConstants and AuthProtocol).
const (
	callIDConnectionContext int32 = -3
	callIDSASL              int32 = -33
)

// RpcKindProto and OperationProto values.
const (
	rpcKindProtocolBuffer = 2
	rpcOpFinalPacket      = 0
)

// RpcResponseHeaderProto.RpcStatusProto values.
const (
	rpcStatusSuccess = 0
	rpcStatusError   = 1
	rpcStatusFatal   = 2
)

// RpcSaslProto.SaslState values.
const (
	saslSuccess   = 0
	saslNegotiate = 1
	saslInitiate  = 2
	saslChallenge = 3
	saslResponse  = 4
)

// rpcRequestHeader is RpcRequestHeaderProto: rpcKind = 1, rpcOp = 2, callId = 3, clientId = 4,
// retryCount = 5. callId is a sint32 (zigzag) since Hadoop 2.1; copies of RpcHeader.proto from
// before that say uint32, and a Hadoop 3 server reads such a -33 as call #-2147483632. In the
// response header callId stays a uint32.
type rpcRequestHeader struct {
	CallID     int32
	ClientID   []byte
	RetryCount int32
}

func (h rpcRequestHeader) marshal() []byte {
	b := appendVarintField(nil, 1, rpcKindProtocolBuffer)
	b = appendVarintField(b, 2, rpcOpFinalPacket)
	b = appendSint32Field(b, 3, h.CallID)
	b = appendBytesField(b, 4, h.ClientID)
	return appendSint32Field(b, 5, h.RetryCount)
}

func decodeRPCRequestHeader(b []byte) (h rpcRequestHeader, err error) {
	h.RetryCount = -1
	err = walk(b, func(f field) error {
		switch f.num {
		case 3:
			h.CallID = f.sint32()
		case 4:
			h.ClientID = f.bytes()
		case 5:
			h.RetryCount = f.sint32()
		}
		return nil
	})
	return h, err
}

// rpcResponseHeader is RpcResponseHeaderProto: callId = 1, status = 2, serverIpcVersionNum = 3,
// exceptionClassName = 4, errorMsg = 5, errorDetail = 6, clientId = 7, retryCount = 8.
type rpcResponseHeader struct {
	CallID         int32
	Status         int32
	ExceptionClass string
	ErrorMsg       string
	ErrorDetail    int32
}

func (h rpcResponseHeader) marshal() []byte {
	b := appendUint32Field(nil, 1, uint32(h.CallID))
	b = appendInt32Field(b, 2, h.Status)
	if h.ExceptionClass != "" {
		b = appendStringField(b, 4, h.ExceptionClass)
		b = appendStringField(b, 5, h.ErrorMsg)
		b = appendInt32Field(b, 6, h.ErrorDetail)
	}
	return b
}

func decodeRPCResponseHeader(b []byte) (h rpcResponseHeader, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			h.CallID = int32(f.uint32())
		case 2:
			h.Status = f.int32()
		case 4:
			h.ExceptionClass = f.str()
		case 5:
			h.ErrorMsg = f.str()
		case 6:
			h.ErrorDetail = f.int32()
		}
		return nil
	})
	return h, err
}

// requestHeader is RequestHeaderProto: methodName = 1, declaringClassProtocolName = 2,
// clientProtocolVersion = 3.
type requestHeader struct {
	Method, Protocol string
}

func (h requestHeader) marshal() []byte {
	b := appendStringField(nil, 1, h.Method)
	b = appendStringField(b, 2, h.Protocol)
	return appendVarintField(b, 3, 1)
}

func decodeRequestHeader(b []byte) (h requestHeader, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 1:
			h.Method = f.str()
		case 2:
			h.Protocol = f.str()
		}
		return nil
	})
	return h, err
}

// connectionContext is IpcConnectionContextProto: userInfo = 2 (UserInformationProto
// {effectiveUser = 1, realUser = 2}), protocol = 3.
type connectionContext struct {
	EffectiveUser string
	Protocol      string
}

func (c connectionContext) marshal() []byte {
	var b []byte
	if c.EffectiveUser != "" {
		b = appendBytesField(b, 2, appendStringField(nil, 1, c.EffectiveUser))
	}
	return appendStringField(b, 3, c.Protocol)
}

func decodeConnectionContext(b []byte) (c connectionContext, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 2:
			return walk(f.msg(), func(g field) error {
				if g.num == 1 {
					c.EffectiveUser = g.str()
				}
				return nil
			})
		case 3:
			c.Protocol = f.str()
		}
		return nil
	})
	return c, err
}

// saslAuth is RpcSaslProto.SaslAuth: method = 1, mechanism = 2, protocol = 3, serverId = 4,
// challenge = 5.
type saslAuth struct {
	Method, Mechanism, Protocol, ServerID string
	Challenge                             []byte
}

// saslMessage is RpcSaslProto: version = 1, state = 2, token = 3, auths = 4.
type saslMessage struct {
	State int32
	Token []byte
	Auths []saslAuth
}

func (m saslMessage) marshal() []byte {
	b := appendInt32Field(nil, 2, m.State)
	if m.Token != nil {
		b = appendBytesField(b, 3, m.Token)
	}
	for _, a := range m.Auths {
		e := appendStringField(nil, 1, a.Method)
		e = appendStringField(e, 2, a.Mechanism)
		e = appendStringField(e, 3, a.Protocol)
		e = appendStringField(e, 4, a.ServerID)
		if a.Challenge != nil {
			e = appendBytesField(e, 5, a.Challenge)
		}
		b = appendBytesField(b, 4, e)
	}
	return b
}

func decodeSASLMessage(b []byte) (m saslMessage, err error) {
	err = walk(b, func(f field) error {
		switch f.num {
		case 2:
			m.State = f.int32()
		case 3:
			m.Token = f.bytes()
		case 4:
			var a saslAuth
			if err := walk(f.msg(), func(g field) error {
				switch g.num {
				case 1:
					a.Method = g.str()
				case 2:
					a.Mechanism = g.str()
				case 3:
					a.Protocol = g.str()
				case 4:
					a.ServerID = g.str()
				case 5:
					a.Challenge = g.bytes()
				}
				return nil
			}); err != nil {
				return err
			}
			m.Auths = append(m.Auths, a)
		}
		return nil
	})
	return m, err
}
