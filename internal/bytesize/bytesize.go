// Package bytesize parses and formats human byte sizes such as "256MiB".
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

var units = []struct {
	suffix string
	mult   int64
}{
	{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1}, {"", 1},
}

// Parse reads a size like "512", "64KiB", "256MiB", "1.5GB" or "2G"
// (a bare K/M/G/T is binary, as in ulimit and docker).
func Parse(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	for _, u := range units {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		num = strings.TrimSpace(num)
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || num == "" {
			break
		}
		if f < 0 {
			return 0, fmt.Errorf("size %q is negative", s)
		}
		v := f * float64(u.mult)
		if v > 1<<62 {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return int64(v), nil
	}
	return 0, fmt.Errorf("invalid size %q: want a number with an optional unit, e.g. 256MiB, 64MB, 1G", s)
}

// Format renders n bytes with a binary unit, e.g. "256 MiB".
func Format(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= unit
		if v < unit && v > -unit {
			return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", v), "0"), ".") + " " + u
		}
	}
	return fmt.Sprintf("%.1f PiB", v/unit)
}
