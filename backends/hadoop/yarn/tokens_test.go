package yarn

import (
	"bytes"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Expected encodings worked out by hand from WritableUtils' documented format.
var vlongCases = []struct {
	v   int64
	hex string
}{
	{0, "00"},
	{1, "01"},
	{127, "7f"},
	{-1, "ff"},
	{-112, "90"},
	{128, "8f80"},
	{255, "8fff"},
	{256, "8e0100"},
	{65536, "8d010000"},
	{-113, "8770"},   // one's complement 112 in one byte
	{-129, "8780"},   // one's complement 128
	{-257, "860100"}, // one's complement 256 in two bytes
	{1 << 31, "8c80000000"},
	{math.MaxInt64, "887fffffffffffffff"},
	{math.MinInt64, "807fffffffffffffff"},
}

func TestVLong(t *testing.T) {
	for _, c := range vlongCases {
		got := hex.EncodeToString(AppendVLong(nil, c.v))
		if got != c.hex {
			t.Errorf("AppendVLong(%d) = %s, want %s", c.v, got, c.hex)
		}
		b, _ := hex.DecodeString(c.hex)
		v, n := ReadVLong(append(b, 0xAA)) // a trailing byte must be left alone
		if v != c.v || n != len(b) {
			t.Errorf("ReadVLong(%s) = %d, %d; want %d, %d", c.hex, v, n, c.v, len(b))
		}
		if _, n := ReadVLong(b[:len(b)-1]); len(b) > 1 && n != 0 {
			t.Errorf("ReadVLong(%s truncated) took %d bytes, want 0", c.hex, n)
		}
	}
	for v := int64(-70000); v <= 70000; v += 7 {
		b := AppendVLong(nil, v)
		if got, n := ReadVLong(b); got != v || n != len(b) {
			t.Fatalf("round trip %d: got %d (%d of %d bytes)", v, got, n, len(b))
		}
	}
}

// writableFixture is a version 0 token file built by hand in Credentials.write's layout: one
// token under alias "appattempt" and one secret key.
func writableFixture() []byte {
	var b bytes.Buffer
	b.WriteString("HDTS")
	b.WriteByte(0)
	b.WriteByte(1) // one token
	b.WriteByte(10)
	b.WriteString("appattempt") // Text alias
	b.WriteByte(3)
	b.Write([]byte{1, 2, 3}) // identifier
	b.WriteByte(2)
	b.Write([]byte{9, 8}) // password
	b.WriteByte(16)
	b.WriteString("YARN_AM_RM_TOKEN") // kind
	b.WriteByte(14)
	b.WriteString("127.0.0.1:8030") // service
	b.WriteByte(1)                  // one secret
	b.WriteByte(3)
	b.WriteString("key")
	b.WriteByte(1)
	b.WriteByte(0x42)
	return b.Bytes()
}

func TestParseTokenFileWritable(t *testing.T) {
	c, err := ParseTokenFile(writableFixture())
	if err != nil {
		t.Fatal(err)
	}
	want := &Credentials{
		Tokens: map[string]Token{"appattempt": {
			Identifier: []byte{1, 2, 3}, Password: []byte{9, 8}, Kind: KindAMRMToken, Service: "127.0.0.1:8030",
		}},
		Secrets: map[string][]byte{"key": {0x42}},
	}
	if d := cmp.Diff(want, c); d != "" {
		t.Fatalf("parsed credentials (-want +got):\n%s", d)
	}
	tok, ok := c.TokenOfKind(KindAMRMToken)
	if !ok || tok.Service != "127.0.0.1:8030" {
		t.Fatalf("TokenOfKind = %+v, %v", tok, ok)
	}
	if _, ok := c.TokenOfKind(KindNMToken); ok {
		t.Fatal("found an NMToken that is not there")
	}
	again, err := c.Marshal(TokenFileWritable)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, writableFixture()) {
		t.Fatalf("Marshal(0) = %x\nwant        %x", again, writableFixture())
	}
}

func TestTokenFileRoundTrip(t *testing.T) {
	long := bytes.Repeat([]byte{7}, 300) // lengths over 127 take a multi-byte vint
	c := &Credentials{
		Tokens: map[string]Token{
			"a": {Identifier: long, Password: []byte("pw"), Kind: KindAMRMToken, Service: "rm:8030"},
			"b": {Identifier: []byte{}, Password: []byte{}, Kind: "HDFS_DELEGATION_TOKEN", Service: ""},
		},
		Secrets: map[string][]byte{"s": long},
	}
	for _, v := range []byte{TokenFileWritable, TokenFileProtobuf} {
		b, err := c.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadTokenFile(path)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if d := cmp.Diff(c, got, cmp.Comparer(func(x, y []byte) bool { return bytes.Equal(x, y) })); d != "" {
			t.Errorf("version %d round trip (-want +got):\n%s", v, d)
		}
		for cut := 5; cut < len(b); cut += 37 {
			if _, err := ParseTokenFile(b[:cut]); err == nil {
				t.Errorf("version %d cut at %d of %d: no error", v, cut, len(b))
			}
		}
	}
}

func TestParseTokenFileErrors(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("HDT"), []byte("XXXX\x00\x00\x00"), []byte("HDTS\x07")} {
		if _, err := ParseTokenFile(b); err == nil {
			t.Errorf("ParseTokenFile(%q): no error", b)
		}
	}
}

func TestAMRMTokenFromEnv(t *testing.T) {
	t.Setenv(EnvTokenFile, "")
	if _, err := AMRMTokenFromEnv(); err != ErrNoTokenFile {
		t.Fatalf("unset: err = %v, want ErrNoTokenFile", err)
	}
	path := filepath.Join(t.TempDir(), "container_tokens")
	if err := os.WriteFile(path, writableFixture(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvTokenFile, path)
	tok, err := AMRMTokenFromEnv()
	if err != nil || !bytes.Equal(tok.Password, []byte{9, 8}) {
		t.Fatalf("AMRMTokenFromEnv = %+v, %v", tok, err)
	}
}
