package runtime

import (
	"bytes"
	"strconv"
)

// DefaultMaxOutput is how many bytes of each output stream an Executor keeps at the head and
// again at the tail when its MaxOutput is 0.
const DefaultMaxOutput = 1 << 20

// BoundedBuffer is an io.Writer that keeps the first Max bytes and the last Max bytes written
// to it and counts the rest, so a task that writes gigabytes costs at most 2*Max bytes of
// memory. Not safe for concurrent use (os/exec copies each stream from one goroutine).
type BoundedBuffer struct {
	Max int

	head    []byte
	tail    []byte // a ring of Max bytes once full
	tailPos int    // where the next byte goes in tail once it is full
	total   int64
}

// NewBoundedBuffer returns a buffer keeping max bytes at each end.
func NewBoundedBuffer(max int) *BoundedBuffer { return &BoundedBuffer{Max: max} }

// Write keeps what fits and never fails.
func (b *BoundedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.total += int64(n)
	if room := b.Max - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 || b.Max <= 0 {
		return n, nil
	}
	if len(p) >= b.Max {
		// p alone fills the tail.
		if cap(b.tail) < b.Max {
			b.tail = make([]byte, 0, b.Max)
		}
		b.tail = append(b.tail[:0], p[len(p)-b.Max:]...)
		b.tailPos = 0
		return n, nil
	}
	if len(b.tail) < b.Max {
		k := min(b.Max-len(b.tail), len(p))
		b.tail = append(b.tail, p[:k]...)
		p = p[k:]
		if len(p) == 0 {
			return n, nil
		}
	}
	// The ring is full: overwrite the oldest bytes.
	for len(p) > 0 {
		k := copy(b.tail[b.tailPos:], p)
		p = p[k:]
		b.tailPos = (b.tailPos + k) % b.Max
	}
	return n, nil
}

// Len is the number of bytes written so far, kept or not.
func (b *BoundedBuffer) Len() int64 { return b.total }

// Omitted is the number of bytes written but not kept.
func (b *BoundedBuffer) Omitted() int64 { return b.total - int64(len(b.head)) - int64(len(b.tail)) }

// Bytes returns what was kept: the head, then when bytes were dropped a line
// "[... N bytes omitted ...]", then the tail.
func (b *BoundedBuffer) Bytes() []byte {
	if len(b.tail) == 0 {
		return b.head
	}
	out := make([]byte, 0, len(b.head)+len(b.tail)+40)
	out = append(out, b.head...)
	if n := b.Omitted(); n > 0 {
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, "[... "...)
		out = strconv.AppendInt(out, n, 10)
		out = append(out, " bytes omitted ...]\n"...)
	}
	return b.appendTail(out)
}

// Tail returns the last bytes written, up to Max (the head's when nothing was dropped).
func (b *BoundedBuffer) Tail() []byte {
	if len(b.tail) == 0 {
		return b.head
	}
	if b.Omitted() == 0 {
		return append(append([]byte(nil), b.head...), b.tail...)
	}
	return b.appendTail(nil)
}

func (b *BoundedBuffer) appendTail(out []byte) []byte {
	if len(b.tail) < b.Max {
		return append(out, b.tail...)
	}
	out = append(out, b.tail[b.tailPos:]...)
	return append(out, b.tail[:b.tailPos]...)
}

// lastLines returns the last n lines of data, without the final newline.
func lastLines(data []byte, n int) string {
	data = bytes.TrimRight(data, "\n")
	i := len(data)
	for k := 0; k < n; k++ {
		j := bytes.LastIndexByte(data[:i], '\n')
		if j < 0 {
			return string(data)
		}
		i = j
		if k == n-1 {
			i = j + 1
		}
	}
	return string(data[i:])
}

// MaxResultLine bounds the line a program's result is read from.
const MaxResultLine = 64 << 20

// lastLineWriter keeps the last line with something besides spaces that was written to it,
// whole (up to max bytes), however long the output: a program's result is its last line,
// which may be far larger than what is kept of its output for the logs.
type lastLineWriter struct {
	max      int
	cur      []byte // the line being written
	last     []byte // the last complete non-blank line
	curLong  bool   // cur passed max
	lastLong bool
}

func (w *lastLineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if room := w.max - len(w.cur); len(seg) > room {
			w.cur = append(w.cur, seg[:max(room, 0)]...)
			w.curLong = true
		} else {
			w.cur = append(w.cur, seg...)
		}
		if i < 0 {
			break
		}
		if len(bytes.TrimSpace(w.cur)) > 0 {
			w.last, w.cur = w.cur, w.last[:0]
			w.lastLong, w.curLong = w.curLong, false
		} else {
			w.cur, w.curLong = w.cur[:0], false
		}
		p = p[i+1:]
	}
	return n, nil
}

// line returns the last non-blank line, trimmed, and whether it passed the bound.
func (w *lastLineWriter) line() ([]byte, bool) {
	if len(bytes.TrimSpace(w.cur)) > 0 {
		return bytes.TrimSpace(w.cur), w.curLong
	}
	if len(w.last) > 0 {
		return bytes.TrimSpace(w.last), w.lastLong
	}
	return nil, false
}
