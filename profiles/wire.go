package profiles

import (
	"errors"
	"fmt"
)

// This file is a minimal reader of the protobuf wire format, enough to walk
// profile.proto without building github.com/google/pprof/profile's object
// graph. Diff aggregates big profiles through it (see decode.go); the
// profile package stays the parser for everything else.

var errTruncated = errors.New("truncated protobuf message")

// Protobuf wire types used by profile.proto.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// wireReader walks the fields of one message.
type wireReader struct {
	buf []byte
	pos int
}

func (r *wireReader) done() bool { return r.pos >= len(r.buf) }

func (r *wireReader) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.pos >= len(r.buf) {
			return 0, errTruncated
		}
		b := r.buf[r.pos]
		r.pos++
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("protobuf varint overflows 64 bits")
}

// next reads a field header and, for length-delimited fields, its payload.
// For varint fields it returns the value in v; for fixed fields it skips
// them (profile.proto has none) and reports the wire type.
func (r *wireReader) next() (field int, wire int, v uint64, payload []byte, err error) {
	key, err := r.varint()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	field, wire = int(key>>3), int(key&7)
	if field <= 0 {
		return 0, 0, 0, nil, fmt.Errorf("invalid protobuf field number %d", field)
	}
	switch wire {
	case wireVarint:
		v, err = r.varint()
	case wireBytes:
		var n uint64
		n, err = r.varint()
		if err == nil {
			if n > uint64(len(r.buf)-r.pos) {
				return 0, 0, 0, nil, errTruncated
			}
			payload = r.buf[r.pos : r.pos+int(n)]
			r.pos += int(n)
		}
	case wireFixed64:
		if len(r.buf)-r.pos < 8 {
			return 0, 0, 0, nil, errTruncated
		}
		r.pos += 8
	case wireFixed32:
		if len(r.buf)-r.pos < 4 {
			return 0, 0, 0, nil, errTruncated
		}
		r.pos += 4
	default:
		return 0, 0, 0, nil, fmt.Errorf("unsupported protobuf wire type %d", wire)
	}
	return field, wire, v, payload, err
}

// forEachVarint calls f for each value of a repeated integer field, which
// may be packed (one length-delimited payload) or not (one varint).
func forEachVarint(wire int, v uint64, payload []byte, f func(uint64)) error {
	if wire == wireVarint {
		f(v)
		return nil
	}
	if wire != wireBytes {
		return fmt.Errorf("unexpected protobuf wire type %d for a repeated integer", wire)
	}
	pr := wireReader{buf: payload}
	for !pr.done() {
		x, err := pr.varint()
		if err != nil {
			return err
		}
		f(x)
	}
	return nil
}
