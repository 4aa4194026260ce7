package yarn

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// This file has the client side of SASL DIGEST-MD5 (RFC 2831) as Hadoop uses it for token
// authentication: username = base64(token identifier), password = base64(token password),
// digest-uri = "<protocol>/<serverId>" from the server's SaslAuth (Hadoop sends "" and
// "default", so "/default"), qop "auth" only. The RPC exchange that carries it is in rpc.go.

// digestMD5 is one DIGEST-MD5 authentication: respond answers the server's digest-challenge,
// verify checks the server's rspauth, which proves that the server knows the password too.
type digestMD5 struct {
	username, password string
	digestURI          string
	// cnonce is the client nonce; empty means a random one.
	cnonce string

	rspauth string // expected response-auth, set by respond
}

// newTokenDigest prepares DIGEST-MD5 for Hadoop token authentication.
func newTokenDigest(t Token, protocol, serverID string) *digestMD5 {
	return &digestMD5{
		username:  base64.StdEncoding.EncodeToString(t.Identifier),
		password:  base64.StdEncoding.EncodeToString(t.Password),
		digestURI: protocol + "/" + serverID,
	}
}

// respond computes the digest-response to a digest-challenge.
func (d *digestMD5) respond(challenge []byte) ([]byte, error) {
	dir, err := parseDirectives(string(challenge))
	if err != nil {
		return nil, fmt.Errorf("DIGEST-MD5 challenge: %w", err)
	}
	nonce := dir["nonce"]
	if nonce == "" {
		return nil, errors.New("DIGEST-MD5 challenge has no nonce")
	}
	if alg := dir["algorithm"]; alg != "md5-sess" {
		return nil, fmt.Errorf("DIGEST-MD5 challenge: algorithm %q, want md5-sess", alg)
	}
	if qops := dir["qop"]; qops != "" {
		ok := false
		for _, q := range strings.Split(qops, ",") {
			if strings.TrimSpace(q) == "auth" {
				ok = true
			}
		}
		if !ok {
			return nil, fmt.Errorf("DIGEST-MD5: the server offers qop %q; only \"auth\" is supported (hadoop.rpc.protection=authentication)", qops)
		}
	}
	realm := dir["realm"]
	cnonce := d.cnonce
	if cnonce == "" {
		var r [24]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, err
		}
		cnonce = base64.StdEncoding.EncodeToString(r[:])
	}
	const nc = "00000001"
	const qop = "auth"

	// A1 = H(username:realm:password) ":" nonce ":" cnonce; A2 = "AUTHENTICATE:" digest-uri.
	hUser := md5.Sum([]byte(d.username + ":" + realm + ":" + d.password))
	a1 := string(hUser[:]) + ":" + nonce + ":" + cnonce
	ha1 := hexMD5(a1)
	kd := func(secret, data string) string { return hexMD5(secret + ":" + data) }
	response := kd(ha1, nonce+":"+nc+":"+cnonce+":"+qop+":"+hexMD5("AUTHENTICATE:"+d.digestURI))
	d.rspauth = kd(ha1, nonce+":"+nc+":"+cnonce+":"+qop+":"+hexMD5(":"+d.digestURI))

	var sb strings.Builder
	if strings.EqualFold(dir["charset"], "utf-8") {
		sb.WriteString("charset=utf-8,")
	}
	fmt.Fprintf(&sb, "username=%s,", quote(d.username))
	if _, ok := dir["realm"]; ok {
		fmt.Fprintf(&sb, "realm=%s,", quote(realm))
	}
	fmt.Fprintf(&sb, "nonce=%s,nc=%s,cnonce=%s,digest-uri=%s,response=%s,qop=%s",
		quote(nonce), nc, quote(cnonce), quote(d.digestURI), response, qop)
	return []byte(sb.String()), nil
}

// verify checks the server's final message, "rspauth=<hex>".
func (d *digestMD5) verify(msg []byte) error {
	if d.rspauth == "" {
		return errors.New("DIGEST-MD5: server finished before the client responded")
	}
	dir, err := parseDirectives(string(msg))
	if err != nil {
		return fmt.Errorf("DIGEST-MD5 rspauth: %w", err)
	}
	if dir["rspauth"] != d.rspauth {
		return errors.New("DIGEST-MD5: the server's rspauth does not match (it does not know the token's password)")
	}
	return nil
}

func hexMD5(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func quote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// parseDirectives parses RFC 2831's comma-separated key=value list, values being tokens or
// quoted strings with backslash escapes. The first of repeated keys wins.
func parseDirectives(s string) (map[string]string, error) {
	out := map[string]string{}
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n' || s[i] == ',') {
			i++
		}
	}
	for skip(); i < len(s); skip() {
		j := strings.IndexByte(s[i:], '=')
		if j < 0 {
			return nil, fmt.Errorf("directive %q has no value", s[i:])
		}
		key := strings.ToLower(strings.TrimSpace(s[i : i+j]))
		i += j + 1
		for i < len(s) && s[i] == ' ' {
			i++
		}
		var val strings.Builder
		if i < len(s) && s[i] == '"' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				if c == '\\' && i < len(s) {
					val.WriteByte(s[i])
					i++
					continue
				}
				if c == '"' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("directive %s: unterminated quoted string", key)
			}
		} else {
			for i < len(s) && s[i] != ',' {
				val.WriteByte(s[i])
				i++
			}
		}
		if _, dup := out[key]; !dup {
			out[key] = strings.TrimSpace(val.String())
		}
	}
	return out, nil
}
