package yarn

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDigestMD5RFC2831 checks the digest against the worked example in RFC 2831 section 4.
func TestDigestMD5RFC2831(t *testing.T) {
	d := &digestMD5{username: "chris", password: "secret", digestURI: "imap/elwood.innosoft.com", cnonce: "OA6MHXh6VqTrRk"}
	challenge := `realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8`
	resp, err := d.respond([]byte(challenge))
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseDirectives(string(resp))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"charset": "utf-8", "username": "chris", "realm": "elwood.innosoft.com", "nonce": "OA6MG9tEQGm2hh",
		"nc": "00000001", "cnonce": "OA6MHXh6VqTrRk", "digest-uri": "imap/elwood.innosoft.com",
		"response": "d388dad90d4bbd760a152321f2143af7", "qop": "auth",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("response directives (-want +got):\n%s", d)
	}
	if err := d.verify([]byte("rspauth=ea40f60335c427b5527b84dbabcdfffd")); err != nil {
		t.Fatalf("verify RFC rspauth: %v", err)
	}
	if err := d.verify([]byte("rspauth=00000000000000000000000000000000")); err == nil {
		t.Fatal("verify accepted a wrong rspauth")
	}
}

func TestDigestMD5Refusals(t *testing.T) {
	for _, c := range []struct{ challenge, want string }{
		{`realm="r",qop="auth",algorithm=md5-sess`, "no nonce"},
		{`realm="r",nonce="n",qop="auth-conf",algorithm=md5-sess`, `only "auth"`},
		{`realm="r",nonce="n",qop="auth",algorithm=md5`, "algorithm"},
		{`nonce="n",realm="r`, "unterminated"},
	} {
		d := &digestMD5{username: "u", password: "p", digestURI: "/default"}
		_, err := d.respond([]byte(c.challenge))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("respond(%s) = %v, want an error with %q", c.challenge, err, c.want)
		}
	}
	d := &digestMD5{}
	if err := d.verify([]byte("rspauth=x")); err == nil {
		t.Error("verify before respond: no error")
	}
}

func TestParseDirectives(t *testing.T) {
	got, err := parseDirectives(` realm="a\"b\\c" , qop="auth,auth-int",NONCE=xyz,realm="second",maxbuf=65536 `)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"realm": `a"b\c`, "qop": "auth,auth-int", "nonce": "xyz", "maxbuf": "65536"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if q := quote(`a"b\c`); q != `"a\"b\\c"` {
		t.Errorf("quote = %s", q)
	}
}

func TestTokenDigestNames(t *testing.T) {
	d := newTokenDigest(Token{Identifier: []byte{0xfb, 0xff}, Password: []byte("pw")}, "", "default")
	if d.username != "+/8=" || d.password != "cHc=" || d.digestURI != "/default" {
		t.Fatalf("got user %q password %q uri %q", d.username, d.password, d.digestURI)
	}
}
