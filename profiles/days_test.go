package profiles

import (
	"testing"
	"time"
)

func TestParseDays(t *testing.T) {
	for s, want := range map[string]time.Duration{"90m": 90 * time.Minute, "2h": 2 * time.Hour, "7d": 7 * 24 * time.Hour, "1.5d": 36 * time.Hour, "0": 0} {
		if got, err := ParseDays(s); err != nil || got != want {
			t.Errorf("ParseDays(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-1h", "-2d", "xd", "soon"} {
		if got, err := ParseDays(s); err == nil {
			t.Errorf("ParseDays(%q) = %v, want an error", s, got)
		}
	}
}
