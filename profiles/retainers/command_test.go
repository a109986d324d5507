package retainers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/profiles/retainers"
)

func TestParseTarget(t *testing.T) {
	if pid, stored, err := retainers.ParseTarget("123"); pid != 123 || stored != "pid:123" || err != nil {
		t.Errorf("ParseTarget(123) = %d, %q, %v", pid, stored, err)
	}
	for target, want := range map[string]string{
		"foo": `"foo" is neither a PID nor a URL`,
		"0":   "PID must be positive, not 0",
		"-5":  "PID must be positive, not -5",
	} {
		if _, _, err := retainers.ParseTarget(target); !opterr.Is(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTarget(%q): %v, want an option error containing %q", target, err, want)
		}
	}
}

// Refused options are refused before the store is opened or the target
// touched.
func TestCommandOptionsRefusals(t *testing.T) {
	for _, c := range []retainers.CommandOptions{
		{Target: "123", MaxDepth: 0},
		{Target: "123", MaxDepth: 1, Top: -1},
		{Target: "123", MaxDepth: 1, MaxPause: -1},
		{Target: "nope", MaxDepth: 1},
	} {
		c.OpenStore = func() (*profiles.Store, error) { t.Errorf("%+v: opened the store", c); return nil, nil }
		if _, err := c.Run(context.Background()); !opterr.Is(err) {
			t.Errorf("%+v: %v, want an option error", c, err)
		}
	}
}
