package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// AppendJSON appends v encoded as JSON to b. It gives the same bytes as encoding/json for the
// JSON-like values tasks deal in (nil, bool, numbers, strings, []any, map[string]any with its
// keys sorted) without reflection, because the driver encodes a million parameter sets and
// results per job; other types go through encoding/json. NaN and infinities are errors, as
// JSON has no way to write them.
func AppendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case float64:
		return appendFloat(b, v, 64)
	case float32:
		return appendFloat(b, float64(v), 32)
	case json.Number: // an integer past int64, kept exact
		return append(b, v...), nil
	case string:
		return appendString(b, v), nil
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = AppendJSON(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		var small [8]string
		keys := small[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = AppendJSON(b, v[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case json.RawMessage:
		return append(b, v...), nil
	}
	enc, err := marshalPlain(v)
	if err != nil {
		return b, err
	}
	return append(b, enc...), nil
}

// marshalPlain is json.Marshal without its HTML escaping: the catalog keeps "<b>" as written,
// not as "\u003cb\u003e", so SQL over it finds what the user wrote.
func marshalPlain(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// MarshalJSON encodes v as AppendJSON does.
func MarshalJSON(v any) ([]byte, error) { return AppendJSON(nil, v) }

// appendFloat formats f as encoding/json does.
func appendFloat(b []byte, f float64, bits int) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, fmt.Errorf("unsupported value: %s", strconv.FormatFloat(f, 'g', -1, bits))
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendString quotes s; strings that need escaping go through encoding/json so the bytes
// match it exactly.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			enc, _ := marshalPlain(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// DecodeJSON decodes a stored JSON value, integers as int; nil or invalid bytes give nil.
func DecodeJSON(data []byte) any {
	if len(data) == 0 {
		return nil
	}
	if v, ok := decodeScalar(data); ok {
		return v
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil
	}
	return normalizeNumbers(v)
}

// decodeScalar decodes the common results cheaply: an integer, true, false, null, or a string
// without escapes. ok is false for anything else.
func decodeScalar(data []byte) (any, bool) {
	switch c := data[0]; {
	case c == '-' || c >= '0' && c <= '9':
		if len(data) > 18 {
			return nil, false
		}
		for _, d := range data[1:] {
			if d < '0' || d > '9' {
				return nil, false
			}
		}
		if (len(data) > 1 && data[0] == '0') || (c == '-' && (len(data) == 1 || data[1] == '0')) {
			return nil, false
		}
		n, err := strconv.Atoi(string(data))
		return n, err == nil
	case c == '"':
		if len(data) < 2 || data[len(data)-1] != '"' {
			return nil, false
		}
		inner := data[1 : len(data)-1]
		for _, d := range inner {
			if d < 0x20 || d == '"' || d == '\\' || d >= 0x80 {
				return nil, false
			}
		}
		return string(inner), true
	}
	switch string(data) {
	case "true":
		return true, true
	case "false":
		return false, true
	case "null":
		return nil, true
	}
	return nil, false
}

// normalizeNumbers turns json.Numbers into int when they are integers that fit, else
// float64, so that results read back from JSON look like the ones expr-lang computes; an
// integer past int64 stays a json.Number, which AppendJSON writes as it is.
func normalizeNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return int(i)
		}
		if !strings.ContainsAny(string(v), ".eE") {
			return v // an integer past int64: a float64 would round it
		}
		f, _ := strconv.ParseFloat(string(v), 64)
		return f
	case []any:
		for i, e := range v {
			v[i] = normalizeNumbers(e)
		}
	case map[string]any:
		for k, e := range v {
			v[k] = normalizeNumbers(e)
		}
	}
	return v
}
