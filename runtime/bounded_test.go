package runtime

import (
	"bytes"
	"strings"
	"testing"
)

func TestBoundedBufferKeepsHeadAndTail(t *testing.T) {
	for _, chunk := range []int{1, 3, 7, 10, 64, 1000} {
		b := NewBoundedBuffer(10)
		var all []byte
		for i := 0; i < 1000; i++ {
			all = append(all, byte('a'+i%26))
		}
		for p := all; len(p) > 0; {
			k := min(chunk, len(p))
			b.Write(p[:k])
			p = p[k:]
		}
		want := string(all[:10]) + "\n[... 980 bytes omitted ...]\n" + string(all[990:])
		if got := string(b.Bytes()); got != want {
			t.Errorf("chunk %d: Bytes() = %q, want %q", chunk, got, want)
		}
		if got := string(b.Tail()); got != string(all[990:]) {
			t.Errorf("chunk %d: Tail() = %q", chunk, got)
		}
		if b.Len() != 1000 || b.Omitted() != 980 {
			t.Errorf("chunk %d: Len %d Omitted %d", chunk, b.Len(), b.Omitted())
		}
	}
}

func TestBoundedBufferSmall(t *testing.T) {
	b := NewBoundedBuffer(10)
	b.Write([]byte("hello "))
	b.Write([]byte("world, all"))
	if got := string(b.Bytes()); got != "hello world, all" {
		t.Errorf("Bytes() = %q", got)
	}
	if got := string(b.Tail()); got != "hello world, all" {
		t.Errorf("Tail() = %q", got)
	}
}

func TestBoundedBufferBoundsMemory(t *testing.T) {
	b := NewBoundedBuffer(1 << 10)
	line := bytes.Repeat([]byte("x"), 4096)
	for i := 0; i < 10000; i++ { // 40 MB
		b.Write(line)
	}
	if n := len(b.Bytes()); n > 3<<10 {
		t.Errorf("kept %d bytes", n)
	}
	if !strings.Contains(string(b.Bytes()), "[... 40957952 bytes omitted ...]") {
		t.Errorf("no omission note in %q", b.Bytes()[1000:1100])
	}
}

func TestLastLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"a\nb\nc", 1, "c"},
		{"", 3, ""},
	} {
		if got := lastLines([]byte(c.in), c.n); got != c.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

// The result line is the last non-blank line, whole, however the output is cut into writes,
// and flagged when it passes the bound.
func TestLastLineWriter(t *testing.T) {
	long := strings.Repeat("y", 3000)
	for _, c := range []struct {
		out, want string
		max       int
		tooLong   bool
	}{
		{"1\n{\"a\": 2}\n\n  \n", `{"a": 2}`, 100, false},
		{"\n\n", "", 100, false},
		{"no newline at the end", "no newline at the end", 100, false},
		{"first\n" + long + "\n", long, 5000, false},
		{"first\n" + long + "\nlast", "last", 100, false},
		{"first\n" + long + "\n", long[:100], 100, true},
	} {
		for _, size := range []int{1, 7, 1 << 20} {
			w := &lastLineWriter{max: c.max}
			for out := c.out; len(out) > 0; {
				k := min(size, len(out))
				w.Write([]byte(out[:k]))
				out = out[k:]
			}
			got, tooLong := w.line()
			if string(got) != c.want || tooLong != c.tooLong {
				t.Errorf("writes of %d: line of %.20q... = %.20q (%d bytes), %v; want %.20q (%d bytes), %v",
					size, c.out, got, len(got), tooLong, c.want, len(c.want), c.tooLong)
			}
		}
	}
}
