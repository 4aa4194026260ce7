package remote

import (
	"encoding/json"
	"strconv"

	rt "github.com/mapflow/mapflow/runtime"
)

// The chunks of tasks and results are where a remote job of a million tasks spends its CPU
// (the driver writes and reads every line, and so do the workers), and encoding/json's
// reflection was most of it. The common lines (a task; an attempt that completed or failed
// without output) are written and read here by hand, byte for byte as encoding/json writes
// them; any other line goes through encoding/json.

// fastLine is a line type with a hand-written form for its common lines.
type fastLine interface {
	// appendFast appends the line as encoding/json would, or reports false to leave it to
	// encoding/json.
	appendFast(b []byte) ([]byte, bool)
	// parseFast reads a line of the common form, or reports false to leave it to
	// encoding/json.
	parseFast(b []byte) bool
}

func (t *taskLine) appendFast(b []byte) ([]byte, bool) {
	if !json.Valid(t.Params) || !compactJSON(t.Params) {
		return b, false
	}
	b = append(b, `{"i":`...)
	b = strconv.AppendInt(b, int64(t.Index), 10)
	b = append(b, `,"n":`...)
	b, _ = rt.AppendJSON(b, t.Name)
	if t.Attempt != 0 {
		b = append(b, `,"a":`...)
		b = strconv.AppendInt(b, int64(t.Attempt), 10)
	}
	b = append(b, `,"p":`...)
	b = append(b, t.Params...)
	return append(b, "}\n"...), true
}

func (t *taskLine) parseFast(b []byte) bool {
	*t = taskLine{}
	return parseObject(b, func(key string, v []byte) bool {
		var ok bool
		switch key {
		case "i":
			t.Index, ok = parseInt(v)
		case "a":
			t.Attempt, ok = parseInt(v)
		case "n":
			t.Name, ok = parsePlainString(v)
		case "p":
			t.Params, ok = append(json.RawMessage(nil), v...), validValue(v)
		}
		return ok
	})
}

func (l *resultLine) appendFast(b []byte) ([]byte, bool) {
	if l.Exception != "" || l.Message != "" || l.Traceback != "" || l.ExitCode != nil ||
		len(l.Stdout) > 0 || len(l.Stderr) > 0 || len(l.Value) > 0 && (!json.Valid(l.Value) || !compactJSON(l.Value)) {
		return b, false
	}
	b = append(b, `{"i":`...)
	b = strconv.AppendInt(b, int64(l.Index), 10)
	b = append(b, `,"a":`...)
	b = strconv.AppendInt(b, int64(l.Attempt), 10)
	if l.Retry {
		b = append(b, `,"retry":true`...)
	}
	b = append(b, `,"s":`...)
	b, _ = rt.AppendJSON(b, string(l.Status))
	if l.Host != "" {
		b = append(b, `,"h":`...)
		b, _ = rt.AppendJSON(b, l.Host)
	}
	b = append(b, `,"t0":`...)
	b = strconv.AppendInt(b, l.Start, 10)
	b = append(b, `,"t1":`...)
	b = strconv.AppendInt(b, l.End, 10)
	if len(l.Value) > 0 {
		b = append(b, `,"v":`...)
		b = append(b, l.Value...)
	}
	return append(b, "}\n"...), true
}

func (l *resultLine) parseFast(b []byte) bool {
	*l = resultLine{}
	return parseObject(b, func(key string, v []byte) bool {
		var ok bool
		var s string
		switch key {
		case "i":
			l.Index, ok = parseInt(v)
		case "a":
			l.Attempt, ok = parseInt(v)
		case "retry":
			l.Retry, ok = string(v) == "true", string(v) == "true" || string(v) == "false"
		case "s":
			s, ok = parsePlainString(v)
			l.Status = rt.Status(s)
		case "h":
			l.Host, ok = parsePlainString(v)
		case "t0":
			var n int
			n, ok = parseInt(v)
			l.Start = int64(n)
		case "t1":
			var n int
			n, ok = parseInt(v)
			l.End = int64(n)
		case "v":
			l.Value, ok = append(json.RawMessage(nil), v...), validValue(v)
		}
		return ok
	})
}

// parseObject splits a one-line JSON object of plain keys into its keys and values, calling
// field for each; it reports false for anything it does not read (whitespace, an escaped
// key, a key seen twice) or that field refuses.
func parseObject(b []byte, field func(key string, v []byte) bool) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	var seen [8]string
	n := 0
	i := 1
	for i < len(b)-1 {
		if b[i] != '"' {
			return false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' || b[j] < 0x20 {
				return false
			}
			j++
		}
		if j+1 >= len(b) || b[j+1] != ':' {
			return false
		}
		key := string(b[i+1 : j])
		for _, k := range seen[:n] {
			if k == key {
				return false // encoding/json keeps the last; leave such lines to it
			}
		}
		if n == len(seen) {
			return false
		}
		seen[n] = key
		n++
		end, ok := valueEnd(b, j+2)
		if !ok || !field(key, b[j+2:end]) {
			return false
		}
		i = end
		if b[i] == ',' {
			i++
			if b[i] == '}' {
				return false
			}
		} else if i != len(b)-1 {
			return false
		}
	}
	return i == len(b)-1
}

// valueEnd finds the end of the JSON value at b[i:] (the index of the ',' or '}' after it).
func valueEnd(b []byte, i int) (int, bool) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch c := b[j]; c {
		case '"':
			for j++; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if j >= len(b) {
				return 0, false
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j, j > i
			}
			depth--
		case ',':
			if depth == 0 {
				return j, j > i
			}
		}
	}
	return 0, false
}

// parseInt reads a JSON integer (no sign but '-', no leading zero).
func parseInt(v []byte) (int, bool) {
	d := v
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 1 && d[0] == '0' {
		return 0, false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(string(v))
	return n, err == nil
}

// parsePlainString reads a JSON string without escapes.
func parsePlainString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	return string(v[1 : len(v)-1]), true
}

// validValue tells whether v is one valid JSON value: an integer at a glance, else by
// encoding/json's validator.
func validValue(v []byte) bool {
	if _, ok := parseInt(v); ok {
		return true
	}
	return json.Valid(v)
}

// compactJSON tells whether valid JSON b has no whitespace outside its strings, as
// encoding/json writes a json.RawMessage.
func compactJSON(b []byte) bool {
	in := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}
