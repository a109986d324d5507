package profiles

import (
	"bytes"
	"testing"
)

// BenchmarkDiff diffs the committed heap pair, both already read: the
// aggregation alone, for two real captures. The large-profile comparison
// with go tool pprof, reading included, is scripts/bench-diff.sh.
func BenchmarkDiff(b *testing.B) {
	base, cur := loadPair(b, "heap")
	for b.Loop() {
		if _, err := Diff(base, cur, DiffOptions{Top: DefaultTop}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadManySamples reads a 500,000-sample profile: the bounded
// reader and wire decoder on their own.
func BenchmarkReadManySamples(b *testing.B) {
	data := gzipBytes(b, manySamplesProfile(500_000))
	for b.Loop() {
		if _, err := Read(bytes.NewReader(data), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
