package profiles

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/opterr"
)

// Profile types leaklab knows how to capture, as named by net/http/pprof.
const (
	TypeHeap          = "heap"
	TypeAllocs        = "allocs"
	TypeGoroutine     = "goroutine"
	TypeGoroutineLeak = "goroutineleak"
	TypeCPU           = "cpu"
	TypeMutex         = "mutex"
	TypeBlock         = "block"
)

// Types lists every capturable type, in the order 'capture --type all'
// takes them (cpu last: it is the one that takes --seconds).
var Types = []string{TypeHeap, TypeAllocs, TypeGoroutine, TypeGoroutineLeak, TypeMutex, TypeBlock, TypeCPU}

// Meta says where a captured profile came from. It is what the store
// indexes and what 'profiles ls' lists.
type Meta struct {
	ID      string            `json:"id,omitempty"` // store ID, empty until saved
	Target  string            `json:"target"`       // URL, file or store ID it was read from
	Type    string            `json:"type"`         // one of Types, or inferred from the content
	Time    time.Time         `json:"time"`
	Service string            `json:"service,omitempty"` // what the target calls itself, when it says
	Labels  map[string]string `json:"labels,omitempty"`
	Seconds int               `json:"seconds,omitempty"` // duration of cpu and delta profiles
	Samples int               `json:"samples"`
	Bytes   int64             `json:"bytes,omitempty"` // gzipped size in the store
}

// Captured is a profile plus where it came from: the one value that
// capture, the store, diff and watch pass around. It keeps the encoded
// profile and parses it into a *profile.Profile only when asked, so that
// diffing big profiles never builds the object graph.
type Captured struct {
	Meta

	mu   sync.Mutex
	data []byte // uncompressed profile.proto
	dec  *decoded
	prof *profile.Profile
	// raw is the body Fetch received, kept only with FetchOptions.KeepRaw.
	raw []byte
}

// Raw returns the bytes the profile was fetched as (gzipped, when the
// target sent it so), kept when FetchOptions.KeepRaw asked for them; nil
// otherwise. Store.SaveRaw and forwarding use them to avoid compressing
// the profile again.
func (c *Captured) Raw() []byte { return c.raw }

// isGzipOf reports whether gz looks like the single gzip stream c was
// read from: the gzip magic and deflate method, and the uncompressed size
// gzip records in its last four bytes (modulo 2^32, as gzip keeps it)
// equal to c's. It does not decompress; it guards against a caller
// passing the wrong bytes, not against a forged stream.
func (c *Captured) isGzipOf(gz []byte) bool {
	if len(gz) < 18 || gz[0] != 0x1f || gz[1] != 0x8b || gz[2] != 8 {
		return false
	}
	c.mu.Lock()
	data := c.data
	c.mu.Unlock()
	return data != nil && binary.LittleEndian.Uint32(gz[len(gz)-4:]) == uint32(len(data))
}

// NewCaptured wraps a parsed profile with its metadata.
func NewCaptured(meta Meta, p *profile.Profile) *Captured {
	meta.Samples = len(p.Sample)
	if meta.Type == "" {
		meta.Type = inferType(p.DefaultSampleType, sampleTypesOf(p))
	}
	if meta.Time.IsZero() && p.TimeNanos != 0 {
		meta.Time = time.Unix(0, p.TimeNanos).UTC()
	}
	return &Captured{Meta: meta, prof: p}
}

// newCapturedFromData checks data is a profile within limits.
func newCapturedFromData(data []byte, l Limits) (*Captured, error) {
	dec, err := decodeProfile(data, l.MaxSamples)
	if err != nil {
		var tooLarge *LimitError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, &NotAProfileError{Hint: sniff(data), Err: err}
	}
	c := &Captured{data: data, dec: dec}
	c.Samples = dec.sampleCount()
	c.Type = inferType(dec.defaultSampleType, dec.sampleTypes)
	if dec.timeNanos > 0 {
		c.Time = time.Unix(0, dec.timeNanos).UTC()
	}
	return c, nil
}

// Profile returns the parsed profile, parsing it on first use.
func (c *Captured) Profile() (*profile.Profile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prof == nil {
		p, err := profile.ParseData(c.data)
		if err != nil {
			// ParseData tries every format it knows and says only
			// "unrecognized profile format"; the proto parser says what is
			// wrong with what passed the wire check.
			if _, perr := profile.ParseUncompressed(c.data); perr != nil {
				err = perr
			}
			return nil, &NotAProfileError{Hint: sniff(c.data), Err: err}
		}
		if err := checkStackDepth(p); err != nil {
			return nil, err
		}
		c.prof = p
	}
	return c.prof, nil
}

// decoded returns the table view used by Diff.
func (c *Captured) decoded() (*decoded, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dec != nil {
		return c.dec, nil
	}
	if c.data == nil {
		var buf bytes.Buffer
		if err := c.prof.WriteUncompressed(&buf); err != nil {
			return nil, err
		}
		c.data = buf.Bytes()
	}
	dec, err := decodeProfile(c.data, int(^uint(0)>>1))
	if err != nil {
		return nil, err
	}
	c.dec = dec
	return dec, nil
}

// SampleTypes lists the profile's sample types (for example
// alloc_objects, alloc_space, inuse_objects, inuse_space for heap).
func (c *Captured) SampleTypes() ([]ValueType, error) {
	d, err := c.decoded()
	if err != nil {
		return nil, err
	}
	return d.sampleTypes, nil
}

// WriteTo writes the profile gzipped, as pprof tools expect.
func (c *Captured) WriteTo(w io.Writer) (int64, error) {
	c.mu.Lock()
	data := c.data
	c.mu.Unlock()
	cw := &countingWriter{w: w}
	if data == nil {
		p, err := c.Profile()
		if err != nil {
			return 0, err
		}
		err = p.Write(cw)
		return cw.n, err
	}
	zw := gzip.NewWriter(cw)
	if _, err := zw.Write(data); err != nil {
		return cw.n, err
	}
	err := zw.Close()
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// SampleTypeIndex returns the index of p's sample type named typ
// ("inuse_space", "alloc_objects"...), or -1 when p has none.
func SampleTypeIndex(p *profile.Profile, typ string) int {
	for i, st := range p.SampleType {
		if st.Type == typ {
			return i
		}
	}
	return -1
}

func sampleTypesOf(p *profile.Profile) []ValueType {
	out := make([]ValueType, len(p.SampleType))
	for i, st := range p.SampleType {
		out[i] = ValueType{Type: st.Type, Unit: st.Unit}
	}
	return out
}

// inferType names a profile's type from its sample types, for files that
// carry no metadata. mutex and block profiles look alike; both come out
// as "contention".
func inferType(defaultSampleType string, sts []ValueType) string {
	has := func(name string) bool {
		for _, st := range sts {
			if st.Type == name {
				return true
			}
		}
		return false
	}
	switch {
	case has("inuse_space") && defaultSampleType == "alloc_space":
		return TypeAllocs
	case has("inuse_space"):
		return TypeHeap
	case has("goroutineleak"):
		return TypeGoroutineLeak
	case has("goroutine") || has("goroutines"):
		return TypeGoroutine
	case has("cpu"):
		return TypeCPU
	case has("contentions"):
		return "contention"
	}
	return "unknown"
}

// typeFamily groups types whose profiles can be diffed against each other.
func typeFamily(t string) string {
	switch t {
	case TypeHeap, TypeAllocs:
		return "heap"
	case TypeGoroutine, TypeGoroutineLeak:
		return "goroutine"
	case TypeMutex, TypeBlock, "contention":
		return "contention"
	}
	return t
}

// diffable says whether profiles of types a and b can be diffed: of one
// family, and not a mutex profile against a block profile, which share
// their sample types (contentions, delay) but measure different waits. A
// file's contention profile does not say which it is, so it goes with
// either.
func diffable(a, b string) bool {
	if typeFamily(a) != typeFamily(b) {
		return false
	}
	specific := func(t string) bool { return t == TypeMutex || t == TypeBlock }
	return !specific(a) || !specific(b) || a == b
}

func validType(t string) error {
	for _, k := range Types {
		if k == t {
			return nil
		}
	}
	return opterr.Errorf("type", "unknown profile type %q (want one of heap, allocs, goroutine, goroutineleak, cpu, mutex, block)", t)
}

// withArticle puts "a" or "an" before a type name, for error messages.
func withArticle(t string) string {
	if t == "" {
		t = "unknown"
	}
	if strings.ContainsRune("aeiou", rune(t[0])) {
		return "an " + t
	}
	return "a " + t
}

// checkStackDepth refuses a profile with a stack deeper than
// maxStackFrames (inlined frames included), by the rule the table view
// Diff reads applies, so that capture, push and watch refuse what diff
// would.
func checkStackDepth(p *profile.Profile) error {
	for _, s := range p.Sample {
		frames := 0
		for _, loc := range s.Location {
			frames += len(loc.Line)
		}
		if err := checkStack(len(s.Location), frames); err != nil {
			return err
		}
	}
	return nil
}

// checkStack refuses one sample's stack of locations locations holding
// frames frames (inlined ones included) when either passes maxStackFrames.
func checkStack(locations, frames int) error {
	if locations > maxStackFrames || frames > maxStackFrames {
		return fmt.Errorf("malformed profile: a stack deeper than %d frames", maxStackFrames)
	}
	return nil
}
