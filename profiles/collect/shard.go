package collect

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Shard is one collector's share of a fleet split across Count
// collectors: it keeps the targets whose hash, modulo Count, is Index.
// The hash is Prometheus's hashmod relabelling's over __address__ (the
// last 8 bytes, big-endian, of the MD5 of the target's host:port), so a
// collector with --shard i/n keeps the targets a Prometheus server keeps
// with 'action: hashmod, source_labels: [__address__], modulus: n' and
// 'regex: i'. The zero Shard keeps every target.
type Shard struct {
	Index, Count int
}

// ParseShard reads "i/n" (0 <= i < n), as --shard takes it.
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	idx, err1 := strconv.Atoi(i)
	cnt, err2 := strconv.Atoi(n)
	sh := Shard{Index: idx, Count: cnt}
	if !ok || err1 != nil || err2 != nil || cnt < 1 {
		return Shard{}, fmt.Errorf("shard %q: want INDEX/COUNT, e.g. 0/2 for the first of two collectors", s)
	}
	if err := sh.check(); err != nil {
		return Shard{}, err
	}
	return sh, nil
}

func (s Shard) check() error {
	if s == (Shard{}) {
		return nil
	}
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %d/%d: want 0 <= INDEX < COUNT", s.Index, s.Count)
	}
	return nil
}

// Owns reports whether the target at url is this shard's.
func (s Shard) Owns(target string) bool {
	if s.Count <= 1 {
		return true
	}
	addr := target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		addr = u.Host
	}
	sum := md5.Sum([]byte(addr))
	return binary.BigEndian.Uint64(sum[8:])%uint64(s.Count) == uint64(s.Index)
}

// filter keeps this shard's targets.
func (s Shard) filter(ts []Target) []Target {
	if s.Count <= 1 {
		return ts
	}
	out := ts[:0:0]
	for _, t := range ts {
		if s.Owns(t.URL) {
			out = append(out, t)
		}
	}
	return out
}
