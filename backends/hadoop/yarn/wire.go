package yarn

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file has the protowire helpers that the hand-written message codecs share.

// errTruncated is returned when a length or a message runs past the end of its buffer.
var errTruncated = errors.New("truncated message")

// field is one decoded protobuf field. For varint, fixed32 and fixed64 fields u holds the value;
// for length-delimited ones b holds the bytes (aliasing the input).
type field struct {
	num protowire.Number
	typ protowire.Type
	u   uint64
	b   []byte
}

// walk calls fn for each field of the encoded message b, in order. Groups are skipped.
func walk(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.u = uint64(v)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		case protowire.StartGroupType:
			n = protowire.ConsumeFieldValue(num, typ, b)
		default:
			return fmt.Errorf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.StartGroupType {
			continue
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// The accessors below return the zero value when the wire type does not match the field's
// declared type; Hadoop never sends that, and a lenient decoder keeps working across versions.

func (f field) str() string {
	if f.typ != protowire.BytesType {
		return ""
	}
	return string(f.b)
}

func (f field) bytes() []byte {
	if f.typ != protowire.BytesType {
		return nil
	}
	return append([]byte(nil), f.b...)
}

// msg returns the bytes of an embedded message.
func (f field) msg() []byte {
	if f.typ != protowire.BytesType {
		return nil
	}
	return f.b
}

func (f field) varint() uint64 {
	if f.typ != protowire.VarintType {
		return 0
	}
	return f.u
}

func (f field) int32() int32   { return int32(f.varint()) }
func (f field) int64() int64   { return int64(f.varint()) }
func (f field) uint32() uint32 { return uint32(f.varint()) }
func (f field) bool() bool     { return f.varint() != 0 }
func (f field) sint32() int32  { return int32(protowire.DecodeZigZag(f.varint() & math.MaxUint32)) }

func (f field) float32() float32 {
	if f.typ != protowire.Fixed32Type {
		return 0
	}
	return math.Float32frombits(uint32(f.u))
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendInt32Field encodes an int32 field as protobuf does: negative values sign-extended to ten
// bytes.
func appendInt32Field(b []byte, num protowire.Number, v int32) []byte {
	return appendVarintField(b, num, uint64(int64(v)))
}

func appendInt64Field(b []byte, num protowire.Number, v int64) []byte {
	return appendVarintField(b, num, uint64(v))
}

// appendUint32Field encodes a uint32 field; Hadoop puts negative call ids into the response
// header's uint32 callId, which go on the wire as their 32-bit two's complement, five bytes long.
func appendUint32Field(b []byte, num protowire.Number, v uint32) []byte {
	return appendVarintField(b, num, uint64(v))
}

func appendSint32Field(b []byte, num protowire.Number, v int32) []byte {
	return appendVarintField(b, num, protowire.EncodeZigZag(int64(v)))
}

func appendBoolField(b []byte, num protowire.Number, v bool) []byte {
	return appendVarintField(b, num, protowire.EncodeBool(v))
}

func appendFloatField(b []byte, num protowire.Number, v float32) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, math.Float32bits(v))
}

// appendDelimited appends msg preceded by its length as a varint, the framing that Hadoop RPC
// uses for every protobuf message inside a packet (Java's writeDelimitedTo).
func appendDelimited(b, msg []byte) []byte {
	b = protowire.AppendVarint(b, uint64(len(msg)))
	return append(b, msg...)
}

// consumeDelimited reads one varint-delimited message from b and returns it and the rest.
func consumeDelimited(b []byte) (msg, rest []byte, err error) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return nil, nil, fmt.Errorf("delimited message: %w", protowire.ParseError(n))
	}
	return v, b[n:], nil
}
