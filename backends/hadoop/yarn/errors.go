package yarn

import (
	"errors"
	"fmt"
	"strings"
)

// Errors that callers test with errors.Is. A *RemoteError or *RESTError matches the sentinel
// that its Java exception class stands for.
var (
	// ErrNotFound: the ResourceManager does not know the application (REST 404).
	ErrNotFound = errors.New("yarn: not found")
	// ErrUnauthorized: the server refused the connection's credentials (a missing, wrong or
	// expired token, or a SASL failure).
	ErrUnauthorized = errors.New("yarn: unauthorized")
	// ErrNotRegistered: Allocate or Finish before Register, or after the ResourceManager
	// restarted or failed over; the ApplicationMaster must Register again.
	ErrNotRegistered = errors.New("yarn: application master not registered")
	// ErrAttemptNotFound: the ResourceManager no longer knows this application attempt (it was
	// killed or expired); the ApplicationMaster should exit.
	ErrAttemptNotFound = errors.New("yarn: application attempt not found")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("yarn: client closed")
)

// classSentinels maps Java exception classes to the sentinels they match.
var classSentinels = map[string]error{
	"org.apache.hadoop.security.token.SecretManager$InvalidToken":               ErrUnauthorized,
	"org.apache.hadoop.security.AccessControlException":                         ErrUnauthorized,
	"javax.security.sasl.SaslException":                                         ErrUnauthorized,
	"org.apache.hadoop.yarn.exceptions.ApplicationMasterNotRegisteredException": ErrNotRegistered,
	"org.apache.hadoop.yarn.exceptions.ApplicationAttemptNotFoundException":     ErrAttemptNotFound,
	"org.apache.hadoop.yarn.exceptions.ApplicationNotFoundException":            ErrNotFound,
	"org.apache.hadoop.yarn.webapp.NotFoundException":                           ErrNotFound,
	"org.apache.hadoop.yarn.server.resourcemanager.webapp.NotFoundException":    ErrNotFound,
	"org.apache.hadoop.security.authorize.AuthorizationException":               ErrUnauthorized,
}

// RemoteError is an exception that a Hadoop RPC server sent back.
type RemoteError struct {
	Addr   string // server address
	Method string // the call, or "connect" during connection set-up
	// Class is the Java exception's class, e.g.
	// org.apache.hadoop.yarn.exceptions.ApplicationMasterNotRegisteredException.
	Class string
	// Message is the exception's message as the server sent it (it may hold a stack trace).
	Message string
	// Fatal says the server closed the connection (RPC status FATAL, e.g. failed
	// authentication); the client reconnects on the next call.
	Fatal bool
	// Code is Hadoop's RpcErrorCodeProto (e.g. 1 application error, 15 unauthorized).
	Code int32
}

const rpcErrorFatalUnauthorized = 15

// Error gives the call, the server, the exception class and the message without its stack trace.
func (e *RemoteError) Error() string {
	return fmt.Sprintf("yarn: %s on %s: %s: %s", e.Method, e.Addr, e.Class, shortMessage(e.Message))
}

// Is reports whether the exception class stands for target (ErrUnauthorized, ErrNotRegistered,
// ErrAttemptNotFound, ErrNotFound).
func (e *RemoteError) Is(target error) bool {
	if target == ErrUnauthorized && e.Code == rpcErrorFatalUnauthorized {
		return true
	}
	s, ok := classSentinels[e.Class]
	return ok && s != nil && s == target
}

// shortMessage drops a Java stack trace ("\n\tat ...") from a message.
func shortMessage(m string) string {
	if i := strings.Index(m, "\n\tat "); i >= 0 {
		m = m[:i]
	}
	return strings.TrimSpace(m)
}
