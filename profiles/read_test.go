package profiles

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
)

func TestReadBadInput(t *testing.T) {
	t.Parallel()
	valid, err := os.ReadFile(filepath.Join("testdata", "heap-current.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		data    []byte
		limits  Limits
		wantErr string
		// limit is the LimitError expected (its Kind and Limit), or nil
		// when the input must be refused as something other than too large.
		limit *LimitError
	}{
		{"empty", nil, Limits{}, "not a pprof profile (empty)", nil},
		{"html", []byte("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"), Limits{}, "an HTML page", nil},
		{"json", []byte(`{"error":"not found"}`), Limits{}, "JSON", nil},
		{"text goroutine dump", []byte("goroutine profile: total 4\n1 @ 0x1 0x2\n"), Limits{}, "ask for ?debug=0", nil},
		{"truncated gzip", valid[:len(valid)/2], Limits{}, "truncated gzip", nil},
		{"gzip header only", valid[:10], Limits{}, "gzip", nil},
		{"gzip bomb (ratio)", testbin.GzipBomb(64 << 20), Limits{}, "gzip bomb", &LimitError{LimitRatio, maxCompressionRatio}},
		{"gzip bomb (size limit)", testbin.GzipBomb(4 << 20), Limits{MaxDecompressed: 1 << 20}, "decompresses to more than 1048576 bytes", &LimitError{LimitDecompressed, 1 << 20}},
		{"too large gzipped", valid, Limits{MaxBytes: 100}, "larger than 100 bytes", &LimitError{LimitBytes, 100}},
		{"too large uncompressed", manySamplesProfile(1000), Limits{MaxBytes: 100}, "larger than 100 bytes", &LimitError{LimitBytes, 100}},
		{"too many samples", gzipBytes(t, manySamplesProfile(DefaultMaxSamples+1)), Limits{}, "more than 1048576 samples", &LimitError{LimitSamples, DefaultMaxSamples}},
		{"too many samples (set limit)", manySamplesProfile(11), Limits{MaxSamples: 10}, "more than 10 samples", &LimitError{LimitSamples, 10}},
		{"gzipped garbage", gzipBytes(t, []byte("\xff\xff\xff\xff\xff")), Limits{}, "not a pprof profile", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.data), tc.limits)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			var got *LimitError
			isLimit := errors.As(err, &got)
			switch {
			case tc.limit == nil && isLimit:
				t.Errorf("err %q is a LimitError %+v; want another kind of refusal", err, got)
			case tc.limit != nil && (!isLimit || *got != *tc.limit):
				t.Errorf("err %q (%T): want a LimitError %+v", err, err, *tc.limit)
			}
			var notProfile *NotAProfileError
			if isLimit && errors.As(err, &notProfile) {
				t.Errorf("a too-large input is also reported as not a profile: %q", err)
			}
		})
	}
	c, err := Read(bytes.NewReader(gzipBytes(t, manySamplesProfile(1000))), Limits{})
	if err != nil || c.Samples != 1000 {
		t.Fatalf("a 1000-sample profile: %v, %v samples", err, c)
	}
}

// ReadFile wraps the same typed error with the file's name.
func TestReadFileLimitError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bomb.pb.gz")
	if err := os.WriteFile(path, testbin.GzipBomb(4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path, Limits{MaxDecompressed: 1 << 20})
	var tooLarge *LimitError
	if !errors.As(err, &tooLarge) || tooLarge.Kind != LimitDecompressed || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("ReadFile of a gzip bomb: %v, want %s: and a LimitError of kind decompressed", err, path)
	}
}

// Real captures read back with the type and sample count they had.
func TestReadTestdata(t *testing.T) {
	for _, tc := range []struct{ file, typ string }{
		{"heap-base.pb.gz", TypeHeap},
		{"goroutine-current.pb.gz", TypeGoroutine},
	} {
		c, err := ReadFile(filepath.Join("testdata", tc.file), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Profile()
		if err != nil {
			t.Fatal(err)
		}
		if c.Time.UnixNano() != p.TimeNanos {
			t.Errorf("%s: time %v, the profile says %v", tc.file, c.Time, time.Unix(0, p.TimeNanos))
		}
		if c.Type != tc.typ || c.Samples != len(p.Sample) || c.Samples == 0 {
			t.Errorf("%s: type %s, %d samples (pprof parses %d)", tc.file, c.Type, c.Samples, len(p.Sample))
		}
	}
}

// FuzzReadProfile feeds arbitrary bytes to the reader and, when they are
// accepted, to a summary and to the profile package's full parse: none may
// panic. Read checks the wire format and the tables, not the samples,
// mappings or labels: the full parse costs three times Read's time and
// memory on a 200,000-stack profile, the cost diff is built to avoid, so
// Read does not do it. The full parse may therefore refuse what Read took
// (a sample with a broken varint or at a missing location), and must then
// say so in one line, as a NotAProfileError: that refusal is what keeps
// such a profile out of the store, since Fetch and the collector's ingest
// both parse fully. What the full parse takes, Summarize must take too,
// with the same samples, but for a stack deeper than maxStackFrames.
func FuzzReadProfile(f *testing.F) {
	for _, name := range []string{"heap-base.pb.gz", "heap-current.pb.gz", "goroutine-base.pb.gz", "goroutine-current.pb.gz"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if c, err := Read(bytes.NewReader(b), Limits{}); err == nil {
			f.Add(c.data) // uncompressed too, so mutations hit the protobuf
		}
	}
	f.Add([]byte{})
	f.Add([]byte("<html></html>"))
	f.Add(manySamplesProfile(3))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Read(bytes.NewReader(data), Limits{MaxDecompressed: 8 << 20, MaxSamples: 10000})
		if err != nil {
			return
		}
		p, perr := c.Profile()
		var notProfile *NotAProfileError
		if perr != nil && (!errors.As(perr, &notProfile) || strings.Contains(perr.Error(), "\n")) {
			t.Errorf("the full parse refuses an accepted profile with an unclear error: %q", perr)
		}
		// Samples are decoded only when summed, so a broken sample may
		// surface here too, as one line saying so.
		_, err = Summarize(c, DiffOptions{By: ByStack})
		switch {
		case err != nil && (!strings.Contains(err.Error(), "malformed profile") || strings.Contains(err.Error(), "\n")):
			t.Errorf("accepted profile fails to summarize with an unclear error: %q", err)
		case err != nil && perr == nil && !strings.Contains(err.Error(), "deeper than"):
			t.Errorf("Summarize refuses a profile the profile package parses: %v", err)
		case err == nil && perr == nil && c.Samples != len(p.Sample):
			t.Errorf("Read counts %d samples, the profile package %d", c.Samples, len(p.Sample))
		}
	})
}
