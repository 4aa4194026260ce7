package yarn

import (
	"errors"
	"fmt"
	"os"
)

// This file reads and writes Hadoop's token storage file (org.apache.hadoop.security.Credentials):
// "HDTS", a version byte, then either the Writable form (version 0) or a varint-delimited
// CredentialsProto (version 1).

// EnvTokenFile is the environment variable in which the NodeManager names a container's token
// file.
const EnvTokenFile = "HADOOP_TOKEN_FILE_LOCATION"

// Token file versions.
const (
	TokenFileWritable byte = 0 // Credentials.write: WritableUtils vints and Text
	TokenFileProtobuf byte = 1 // CredentialsProto, varint-delimited
)

const tokenFileMagic = "HDTS"

// ErrNoTokenFile is returned when HADOOP_TOKEN_FILE_LOCATION is not set, i.e. the program does
// not run in a YARN container.
var ErrNoTokenFile = errors.New("yarn: " + EnvTokenFile + " is not set (not running in a YARN container?)")

// ErrTokenNotFound is returned when a token file holds no token of the wanted kind.
var ErrTokenNotFound = errors.New("yarn: token not found")

// Credentials is the content of a token file: tokens and secret keys, each under an alias.
type Credentials struct {
	Tokens  map[string]Token
	Secrets map[string][]byte
}

// TokenOfKind returns the first token (by alias) of the given kind.
func (c *Credentials) TokenOfKind(kind string) (Token, bool) {
	for _, alias := range sortedKeys(c.Tokens) {
		if t := c.Tokens[alias]; t.Kind == kind {
			return t, true
		}
	}
	return Token{}, false
}

// ReadTokenFile reads and parses a token file.
func ReadTokenFile(path string) (*Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("yarn: token file: %w", err)
	}
	c, err := ParseTokenFile(b)
	if err != nil {
		return nil, fmt.Errorf("yarn: token file %s: %w", path, err)
	}
	return c, nil
}

// AMRMTokenFromEnv returns the AMRMToken from the token file that the NodeManager gave the
// ApplicationMaster's container. It fails with ErrNoTokenFile outside a container and with
// ErrTokenNotFound when the file has no token of kind YARN_AM_RM_TOKEN.
func AMRMTokenFromEnv() (Token, error) {
	path := os.Getenv(EnvTokenFile)
	if path == "" {
		return Token{}, ErrNoTokenFile
	}
	c, err := ReadTokenFile(path)
	if err != nil {
		return Token{}, err
	}
	t, ok := c.TokenOfKind(KindAMRMToken)
	if !ok {
		return Token{}, fmt.Errorf("%w: no %s in %s (is this the ApplicationMaster's container?)", ErrTokenNotFound, KindAMRMToken, path)
	}
	return t, nil
}

// ParseTokenFile parses a token file of either version.
func ParseTokenFile(b []byte) (*Credentials, error) {
	if len(b) < len(tokenFileMagic)+1 || string(b[:len(tokenFileMagic)]) != tokenFileMagic {
		return nil, errors.New("not a token file (no HDTS header)")
	}
	version := b[len(tokenFileMagic)]
	body := b[len(tokenFileMagic)+1:]
	c := &Credentials{Tokens: map[string]Token{}, Secrets: map[string][]byte{}}
	switch version {
	case TokenFileWritable:
		return c, c.readWritable(body)
	case TokenFileProtobuf:
		return c, c.readProto(body)
	}
	return nil, fmt.Errorf("unknown token file version %d", version)
}

// Marshal encodes the credentials as a token file of the given version, aliases in sorted order.
func (c *Credentials) Marshal(version byte) ([]byte, error) {
	b := append([]byte(tokenFileMagic), version)
	switch version {
	case TokenFileWritable:
		return c.appendWritable(b), nil
	case TokenFileProtobuf:
		return c.appendProto(b), nil
	}
	return nil, fmt.Errorf("yarn: unknown token file version %d", version)
}

// readWritable parses Credentials.write's form: vint count, then (Text alias, Token) pairs; vint
// count, then (Text alias, vint length, bytes) secrets. A Token is vint-length identifier,
// vint-length password, Text kind, Text service.
func (c *Credentials) readWritable(b []byte) error {
	r := &writableReader{b: b}
	n := r.vint()
	for i := 0; i < n && r.err == nil; i++ {
		alias := r.text()
		var t Token
		t.Identifier = r.vbytes()
		t.Password = r.vbytes()
		t.Kind = r.text()
		t.Service = r.text()
		if r.err == nil {
			c.Tokens[alias] = t
		}
	}
	n = r.vint()
	for i := 0; i < n && r.err == nil; i++ {
		alias := r.text()
		v := r.vbytes()
		if r.err == nil {
			c.Secrets[alias] = v
		}
	}
	if r.err != nil {
		return fmt.Errorf("writable credentials at byte %d: %w", 5+r.off, r.err)
	}
	return nil
}

func (c *Credentials) appendWritable(b []byte) []byte {
	b = AppendVLong(b, int64(len(c.Tokens)))
	for _, alias := range sortedKeys(c.Tokens) {
		t := c.Tokens[alias]
		b = appendText(b, alias)
		b = appendVBytes(b, t.Identifier)
		b = appendVBytes(b, t.Password)
		b = appendText(b, t.Kind)
		b = appendText(b, t.Service)
	}
	b = AppendVLong(b, int64(len(c.Secrets)))
	for _, alias := range sortedKeys(c.Secrets) {
		b = appendText(b, alias)
		b = appendVBytes(b, c.Secrets[alias])
	}
	return b
}

// CredentialsProto: tokens = 1, secrets = 2, each a CredentialsKVProto {alias = 1, token = 2,
// secret = 3} (Security.proto).
func (c *Credentials) readProto(b []byte) error {
	msg, _, err := consumeDelimited(b)
	if err != nil {
		return err
	}
	return walk(msg, func(f field) error {
		if f.num != 1 && f.num != 2 {
			return nil
		}
		var alias string
		var tok Token
		var secret []byte
		if err := walk(f.msg(), func(g field) error {
			var e error
			switch g.num {
			case 1:
				alias = g.str()
			case 2:
				tok, e = decodeToken(g.msg())
			case 3:
				secret = g.bytes()
			}
			return e
		}); err != nil {
			return err
		}
		if f.num == 1 {
			c.Tokens[alias] = tok
		} else {
			c.Secrets[alias] = secret
		}
		return nil
	})
}

func (c *Credentials) appendProto(b []byte) []byte {
	var m []byte
	for _, alias := range sortedKeys(c.Tokens) {
		kv := appendStringField(nil, 1, alias)
		kv = appendBytesField(kv, 2, appendToken(nil, c.Tokens[alias]))
		m = appendBytesField(m, 1, kv)
	}
	for _, alias := range sortedKeys(c.Secrets) {
		kv := appendStringField(nil, 1, alias)
		kv = appendBytesField(kv, 3, c.Secrets[alias])
		m = appendBytesField(m, 2, kv)
	}
	return appendDelimited(b, m)
}

// ---- Hadoop WritableUtils ----

// AppendVLong appends v in Hadoop's WritableUtils variable-length form, which is not protobuf's
// varint: a value in [-112, 127] is one byte; otherwise a first byte says the sign and how many
// big-endian bytes follow (-113..-120 for 1..8 bytes of a non-negative value, -121..-128 for
// 1..8 bytes of a negative value stored as its one's complement).
func AppendVLong(b []byte, v int64) []byte {
	if v >= -112 && v <= 127 {
		return append(b, byte(v))
	}
	first := -112
	if v < 0 {
		v = ^v
		first = -120
	}
	n := 0
	for t := v; t != 0; t >>= 8 {
		n++
	}
	b = append(b, byte(int8(first-n)))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// ReadVLong decodes one WritableUtils vlong from the start of b and returns it and the number
// of bytes it took; n is 0 when b is too short.
func ReadVLong(b []byte) (v int64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	first := int8(b[0])
	if first >= -112 {
		return int64(first), 1
	}
	negative := first < -120
	size := int(-112 - int(first)) // bytes that follow
	if negative {
		size = int(-120 - int(first))
	}
	if len(b) < 1+size {
		return 0, 0
	}
	var u uint64
	for _, c := range b[1 : 1+size] {
		u = u<<8 | uint64(c)
	}
	v = int64(u)
	if negative {
		v = ^v
	}
	return v, 1 + size
}

func appendText(b []byte, s string) []byte {
	b = AppendVLong(b, int64(len(s)))
	return append(b, s...)
}

func appendVBytes(b, v []byte) []byte {
	b = AppendVLong(b, int64(len(v)))
	return append(b, v...)
}

// writableReader reads Writable fields with a sticky error.
type writableReader struct {
	b   []byte
	off int
	err error
}

func (r *writableReader) vint() int {
	if r.err != nil {
		return 0
	}
	v, n := ReadVLong(r.b[r.off:])
	if n == 0 {
		r.err = errTruncated
		return 0
	}
	if v < -1<<31 || v > 1<<31-1 {
		r.err = fmt.Errorf("vint %d out of range", v)
		return 0
	}
	r.off += n
	return int(v)
}

func (r *writableReader) vbytes() []byte {
	n := r.vint()
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("length %d: %w", n, errTruncated)
		return nil
	}
	v := append([]byte(nil), r.b[r.off:r.off+n]...)
	r.off += n
	return v
}

func (r *writableReader) text() string { return string(r.vbytes()) }
