package profiles

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"testing"
)

// protoWriter writes protobuf wire format for tests that need inputs the
// profile package refuses to build (millions of samples, broken refs).
type protoWriter struct{ buf []byte }

func (w *protoWriter) varint(field int, v uint64) {
	w.buf = binary.AppendUvarint(w.buf, uint64(field)<<3|wireVarint)
	w.buf = binary.AppendUvarint(w.buf, v)
}

func (w *protoWriter) bytes(field int, b []byte) {
	w.buf = binary.AppendUvarint(w.buf, uint64(field)<<3|wireBytes)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(b)))
	w.buf = append(w.buf, b...)
}

func (w *protoWriter) msg(field int, f func(*protoWriter)) {
	var sub protoWriter
	f(&sub)
	w.bytes(field, sub.buf)
}

// manySamplesProfile encodes a valid one-function heap-like profile with n
// samples, each with one location and one value.
func manySamplesProfile(n int) []byte {
	var w protoWriter
	w.msg(fieldProfileSampleType, func(v *protoWriter) { v.varint(1, 1); v.varint(2, 2) })
	sample := func() []byte {
		var s protoWriter
		s.varint(fieldSampleLocationID, 1)
		s.varint(fieldSampleValue, 1)
		return s.buf
	}()
	for range n {
		w.bytes(fieldProfileSample, sample)
	}
	w.msg(fieldProfileLocation, func(l *protoWriter) {
		l.varint(fieldLocationID, 1)
		l.msg(fieldLocationLine, func(ln *protoWriter) { ln.varint(fieldLineFunctionID, 1); ln.varint(fieldLineLine, 7) })
	})
	w.msg(fieldProfileFunction, func(f *protoWriter) { f.varint(fieldFunctionID, 1); f.varint(fieldFunctionName, 3) })
	for _, s := range []string{"", "objects", "count", "main.leak"} {
		w.bytes(fieldProfileStringTable, []byte(s))
	}
	return w.buf
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
