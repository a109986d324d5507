package profiles

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Default limits on what reading one profile may cost. A real heap or
// goroutine profile of a large service is a few MB; these leave room for
// synthetic 200,000-stack profiles while refusing gzip bombs and
// multi-million-sample inputs before they take the machine's memory.
const (
	DefaultMaxBytes        = 256 << 20 // bytes read from the source, compressed
	DefaultMaxDecompressed = 512 << 20 // bytes after gunzip
	DefaultMaxSamples      = 1 << 20   // samples in one profile

	// maxCompressionRatio catches gzip bombs early: real profiles compress
	// 3–10x; runs of zeros compress 1000x. Checked once the output passes
	// ratioCheckAfter, so small inputs are never refused for it.
	maxCompressionRatio = 100
	ratioCheckAfter     = 16 << 20
)

// Limits bound what reading a profile may cost. Zero fields take the
// Default values.
type Limits struct {
	MaxBytes        int64
	MaxDecompressed int64
	MaxSamples      int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = DefaultMaxDecompressed
	}
	if l.MaxSamples <= 0 {
		l.MaxSamples = DefaultMaxSamples
	}
	return l
}

// LimitKind names which of the Limits a profile went over.
type LimitKind string

// The limits a LimitError can name.
const (
	// LimitBytes is Limits.MaxBytes: bytes read from the source, as sent
	// (gzipped or not).
	LimitBytes LimitKind = "bytes"
	// LimitDecompressed is Limits.MaxDecompressed: bytes after gunzip.
	LimitDecompressed LimitKind = "decompressed"
	// LimitRatio is the fixed bound on how much a gzip stream may expand
	// (maxCompressionRatio), which stops a gzip bomb before it reaches
	// LimitDecompressed.
	LimitRatio LimitKind = "ratio"
	// LimitSamples is Limits.MaxSamples: samples in one profile.
	LimitSamples LimitKind = "samples"
)

// LimitError says a profile went over one of the size limits: too many
// bytes, a gzip stream that expands too far (a gzip bomb), or too many
// samples. Every size-limit refusal of this package is one, so callers
// tell "too large" apart from "not a profile" with errors.As rather than
// by the message.
type LimitError struct {
	Kind LimitKind
	// Limit is the bound that was passed: bytes, samples, or for
	// LimitRatio the expansion factor.
	Limit int64
}

func (e *LimitError) Error() string {
	switch e.Kind {
	case LimitBytes:
		return fmt.Sprintf("profile is larger than %d bytes, the limit", e.Limit)
	case LimitDecompressed:
		return fmt.Sprintf("profile decompresses to more than %d bytes, the limit (a gzip bomb?)", e.Limit)
	case LimitRatio:
		return fmt.Sprintf("profile decompresses more than %dx (a gzip bomb?)", e.Limit)
	case LimitSamples:
		return fmt.Sprintf("profile has more than %d samples, the limit", e.Limit)
	}
	return fmt.Sprintf("profile is over the %s limit of %d", e.Kind, e.Limit)
}

// NotAProfileError says the bytes read are not a pprof profile; Hint names
// what they look like instead (an HTML page, JSON, text, nothing).
type NotAProfileError struct {
	Hint string
	Err  error
}

func (e *NotAProfileError) Error() string {
	msg := "not a pprof profile"
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *NotAProfileError) Unwrap() error { return e.Err }

// ReadFile reads a profile file (gzipped or not) within limits.
func ReadFile(path string, limits Limits) (*Captured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l := limits.withDefaults()
	data, err := readUncompressed(f, l, gzipSizeHint(f, l))
	var c *Captured
	if err == nil {
		c, err = newCapturedFromData(data, l)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Target = path
	return c, nil
}

// Read reads one profile (gzipped or not) within limits, checks that it is
// a well-formed profile.proto, and returns it with metadata inferred from
// its content (type and time); Target is left for the caller.
func Read(r io.Reader, limits Limits) (*Captured, error) {
	data, err := readUncompressed(r, limits.withDefaults(), 0)
	if err != nil {
		return nil, err
	}
	return newCapturedFromData(data, limits.withDefaults())
}

// gzipSizeHint reads the uncompressed size a gzip file records in its
// last four bytes, so that the buffer is allocated once instead of
// doubling (which costs up to twice the memory on big profiles). It is
// only a hint: bounded by the limits and by a plausible ratio, and 0 when
// unknown.
func gzipSizeHint(f *os.File, l Limits) int64 {
	info, err := f.Stat()
	if err != nil || info.Size() < 18 {
		return 0
	}
	var tail [4]byte
	if _, err := f.ReadAt(tail[:], info.Size()-4); err != nil {
		return 0
	}
	hint := int64(binary.LittleEndian.Uint32(tail[:]))
	return min(hint, l.MaxDecompressed, maxCompressionRatio*info.Size())
}

// readUncompressed returns the profile bytes, gunzipped when needed, with
// both the raw and the decompressed size bounded. sizeHint, when known,
// presizes the buffer.
func readUncompressed(r io.Reader, l Limits, sizeHint int64) ([]byte, error) {
	counted := &countingReader{r: io.LimitReader(r, l.MaxBytes+1)}
	br := bufio.NewReader(counted)
	head, _ := br.Peek(2)
	if len(head) == 0 {
		return nil, &NotAProfileError{Hint: "empty"}
	}
	if !(len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b) {
		data, err := io.ReadAll(br)
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > l.MaxBytes {
			return nil, &LimitError{Kind: LimitBytes, Limit: l.MaxBytes}
		}
		return data, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, &NotAProfileError{Hint: "broken gzip", Err: err}
	}
	var out bytes.Buffer
	if sizeHint > 0 {
		out.Grow(int(sizeHint) + 1) // +1: the final Read that sees EOF must not grow it
	}
	buf := make([]byte, 256<<10)
	for {
		n, err := zr.Read(buf)
		out.Write(buf[:n])
		if int64(out.Len()) > l.MaxDecompressed {
			return nil, &LimitError{Kind: LimitDecompressed, Limit: l.MaxDecompressed}
		}
		if out.Len() > ratioCheckAfter && int64(out.Len()) > maxCompressionRatio*counted.n {
			return nil, &LimitError{Kind: LimitRatio, Limit: maxCompressionRatio}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if counted.n > l.MaxBytes {
				return nil, &LimitError{Kind: LimitBytes, Limit: l.MaxBytes}
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, &NotAProfileError{Hint: "truncated gzip", Err: err}
			}
			return nil, &NotAProfileError{Hint: "broken gzip", Err: err}
		}
	}
	if counted.n > l.MaxBytes {
		return nil, &LimitError{Kind: LimitBytes, Limit: l.MaxBytes}
	}
	return out.Bytes(), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// sniff names what non-profile bytes look like, for error messages.
func sniff(data []byte) string {
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return "empty"
	}
	lower := bytes.ToLower(t[:min(len(t), 512)])
	switch {
	case bytes.HasPrefix(lower, []byte("<!doctype html")) || bytes.HasPrefix(lower, []byte("<html")) || bytes.Contains(lower, []byte("<body")):
		return "an HTML page"
	case t[0] == '{' || t[0] == '[':
		return "JSON"
	case bytes.HasPrefix(t, []byte("goroutine ")) || bytes.HasPrefix(t, []byte("goroutine profile:")):
		return "a text goroutine dump; ask for ?debug=0"
	case bytes.HasPrefix(t, []byte("heap profile:")):
		return "a legacy text heap profile; ask for ?debug=0"
	}
	printable := 0
	for _, b := range lower {
		if b >= 0x20 && b < 0x7f || b == '\n' || b == '\t' || b == '\r' {
			printable++
		}
	}
	if printable == len(lower) {
		return "text"
	}
	return ""
}
