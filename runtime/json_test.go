package runtime

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false, 0, -7, int64(1) << 60, 3.0, 0.1, 1e21, 1e-7, -2.5e-10, 123456789.125,
		float32(0.1), "", "plain", "quo\"te", "<tag>&", "tab\tnew\nline", "ünïcode", "\u2028",
		[]any{}, []any{1, "a", nil, []any{2.5}},
		map[string]any{}, map[string]any{"y": 2, "x": 1, "z": map[string]any{"b": []any{}, "a": nil}},
		map[string]any{"k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7, "k8": 8, "k9": 9},
		struct{ A int }{1},
	}
	for _, v := range values {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // the catalog keeps <, > and & as written
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		got, err := MarshalJSON(v)
		if err != nil {
			t.Errorf("MarshalJSON(%#v): %v", v, err)
			continue
		}
		if string(got) != string(want) {
			t.Errorf("MarshalJSON(%#v) = %s, want %s", v, got, want)
		}
	}
	for _, v := range []any{math.Inf(1), math.NaN(), []any{math.Inf(-1)}} {
		if _, err := MarshalJSON(v); err == nil {
			t.Errorf("MarshalJSON(%v) gave no error", v)
		}
	}
}

func TestDecodeJSONNumbers(t *testing.T) {
	v := DecodeJSON([]byte(`{"a": 40, "b": 2.5, "c": [1, null]}`))
	m := v.(map[string]any)
	if m["a"] != 40 || m["b"] != 2.5 || m["c"].([]any)[0] != 1 {
		t.Errorf("decodeJSON = %#v", v)
	}
}

// DecodeJSON's fast path for scalars gives what the general decoder gives.
func TestDecodeJSONScalars(t *testing.T) {
	for _, in := range []string{"0", "7", "-3", "123456789012345678", "1234567890123456789", "-0", "-", "1.5",
		"1e3", `"abc"`, `""`, `"a\"b"`, `"é"`, `"a\nb"`, "true", "false", "null", "tru", `"abc`, "[1]", `{"a":1}`} {
		var want any
		d := json.NewDecoder(strings.NewReader(in))
		d.UseNumber()
		if err := d.Decode(&want); err != nil {
			want = nil
		} else {
			want = normalizeNumbers(want)
		}
		if got := DecodeJSON([]byte(in)); !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeJSON(%s) = %#v, want %#v", in, got, want)
		}
	}
}

// An integer past int64 stays exact from a result to the catalog, the printed results and a
// Python combiner's arguments.
func TestDecodeJSONBigInt(t *testing.T) {
	for _, in := range []string{"18446744073709551617", "-9223372036854775809", "[18446744073709551617]"} {
		out, err := MarshalJSON(DecodeJSON([]byte(in)))
		if err != nil || string(out) != in {
			t.Errorf("%s decoded and encoded gives %s, %v", in, out, err)
		}
	}
}
