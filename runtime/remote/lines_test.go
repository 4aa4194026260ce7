package remote

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	rt "github.com/mapflow/mapflow/runtime"
)

// referenceEncode is what encodeLines wrote before its hand-written forms: encoding/json.
func referenceEncode[T any](t *testing.T, lines []T) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range lines {
		if err := enc.Encode(&lines[i]); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestFastLinesMatchEncodingJSON(t *testing.T) {
	code := 3
	results := []resultLine{
		{Index: 0, Attempt: 1, Status: rt.Completed, Host: "h1", Start: 1, End: 2, Value: json.RawMessage(`40`)},
		{Index: 7, Attempt: 2, Retry: true, Status: rt.Failed, Host: "ip-10-0-0-1", Start: -5, End: 1 << 62},
		{Index: 8, Attempt: 1, Status: rt.Completed, Value: json.RawMessage(`{"a":[1,"}",{"b":null}],"é":"\u2028"}`)},
		{Index: 9, Attempt: 1, Status: rt.Completed, Host: `h"q\`, Value: json.RawMessage(`"x,y}"`)},
		{Index: 10, Attempt: 1, Status: rt.Completed, Value: json.RawMessage(`[1, 2]`)}, // not compact: encoding/json's
		{Index: 11, Attempt: 1, Status: rt.Failed, Exception: "ValueError", Message: "<bad>", ExitCode: &code, Stdout: []byte("out")},
		{Index: 12, Attempt: 1, Status: rt.Completed, Host: "h\xff", Value: json.RawMessage(`null`)},
	}
	if got, want := mustEncode(t, results), referenceEncode(t, results); !bytes.Equal(got, want) {
		t.Errorf("result lines:\n got %s\nwant %s", got, want)
	}
	tasks := []taskLine{
		{Index: 0, Name: "add-0", Params: json.RawMessage(`{"x":1,"y":2}`)},
		{Index: 1 << 40, Name: "f-é\"", Attempt: 3, Params: json.RawMessage(`{"s":"a b"}`)},
		{Index: 2, Name: "g-2", Params: json.RawMessage(`{ "x": 1 }`)},
	}
	if got, want := mustEncode(t, tasks), referenceEncode(t, tasks); !bytes.Equal(got, want) {
		t.Errorf("task lines:\n got %s\nwant %s", got, want)
	}
	// What either form writes reads back as it was.
	back, err := decodeLines[resultLine](mustEncode(t, results))
	if err != nil {
		t.Fatal(err)
	}
	for i := range results {
		want := results[i]
		if i == 4 {
			want.Value = json.RawMessage(`[1,2]`) // encoding/json compacts a RawMessage
		}
		if i == 6 {
			want.Host = "h\uFFFD" // and writes invalid UTF-8 as U+FFFD
		}
		if !reflect.DeepEqual(back[i], want) {
			t.Errorf("line %d read back as %+v, want %+v", i, back[i], want)
		}
	}
}

func mustEncode[T any](t *testing.T, lines []T) []byte {
	t.Helper()
	b, err := encodeLines(lines)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFastLinesReadAsEncodingJSON feeds odd and damaged lines to decodeLines: each reads as
// encoding/json reads it, or fails as it does.
func TestFastLinesReadAsEncodingJSON(t *testing.T) {
	readsAsEncodingJSON[resultLine](t, []string{
		`{"i":1,"a":1,"s":"Completed","t0":1,"t1":2,"v":3}`,
		`{"i": 1,"a":1,"s":"Completed","t0":1,"t1":2,"v":3}`,
		`{"i":1,"i":2,"a":1,"s":"Completed","t0":1,"t1":2}`,
		`{"i":01,"a":1,"s":"Completed","t0":1,"t1":2}`,
		`{"i":-0,"a":1,"s":"Completed","t0":1,"t1":2}`,
		`{"i":1.5,"a":1,"s":"Completed","t0":1,"t1":2}`,
		`{"i":1,"a":1,"s":"Completed","t0":1,"t1":2,}`,
		`{"i":1,"a":1,"s":"Comp\u006cleted","t0":1,"t1":2}`,
		`{"i":1,"a":1,"s":"Completed","t0":1,"t1":2,"v":{"x":"}"}}`,
		`{"i":1,"a":1,"s":"Completed","t0":1,"t1":2,"v":[1,}`,
		`{"i":1,"a":1,"s":"Completed","t0":1,"t1":2,"v":tru}`,
		`{"i":1,"a":1,"s":"Completed","t0":1,"t1":2,"v":"unterminated}`,
		`{"i":1,"a":1,"retry":yes,"s":"Failed","t0":1,"t1":2}`,
		`{"i":1,"a":1,"retry":false,"s":"Failed","t0":1,"t1":2,"zz":1}`,
		`{"i":99999999999999999999,"a":1,"s":"Completed","t0":1,"t1":2}`,
		`{"i":1,"a":1,"s":"Completed","h":"a\"b","t0":1,"t1":2}`,
		`{"i":1`,
		`{}`,
		`[1,2]`,
		`{"i":1,"a":1,"s":"Completed","t0":1,"t1":2,"v":1e400}`,
	})
	readsAsEncodingJSON[taskLine](t, []string{
		`{"i":3,"n":"add-3","p":{"x":1}}`,
		`{"n":"add-3","i":3,"a":2,"p":{"x":"}{"}}`,
		`{"i":3,"n":"add\n3","p":{}}`,
		`{"i":3,"n":"add-3","p":{"x":}}`,
		`{"i":3,"n":"add-3","p":null}`,
	})
}

// readsAsEncodingJSON checks that decodeLines reads each line as json.Unmarshal reads it, or
// fails where it fails.
func readsAsEncodingJSON[T any](t *testing.T, lines []string) {
	t.Helper()
	for _, line := range lines {
		got, gotErr := decodeLines[T]([]byte(line + "\n"))
		var want T
		wantErr := json.Unmarshal([]byte(line), &want)
		if (gotErr != nil) != (wantErr != nil) {
			t.Errorf("%s: error %v, encoding/json's %v", line, gotErr, wantErr)
			continue
		}
		if gotErr == nil && !reflect.DeepEqual(got[0], want) {
			t.Errorf("%s: read %+v, encoding/json reads %+v", line, got[0], want)
		}
	}
}

func BenchmarkDecodeResultLines(b *testing.B) {
	lines := make([]resultLine, 10000)
	for i := range lines {
		lines[i] = resultLine{Index: i, Attempt: 1, Status: rt.Completed, Host: "ip-10-0-0-1", Start: 1e18, End: 1e18 + 500, Value: json.RawMessage("123456")}
	}
	data, _ := encodeLines(lines)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := decodeLines[resultLine](data); err != nil {
			b.Fatal(err)
		}
	}
}
