package collect

import (
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

// A command line's options become Options, or an option error naming
// what to fix.
func TestCommandOptions(t *testing.T) {
	t.Parallel()
	good := CommandOptions{Targets: "targets.json", Types: []string{"heap"}, Every: time.Minute, Concurrency: 2,
		Retain: "7d", MaxStore: "1GiB", MaxPush: "16MiB", Window: 10 * time.Minute, MaxSuspects: 3, Shard: "1/2"}
	co, err := good.Options()
	if err != nil {
		t.Fatal(err)
	}
	if co.Retention.MaxAge != 7*24*time.Hour || co.Retention.MaxBytes != 1<<30 || co.MaxPushBytes != 16<<20 ||
		co.Detect.Window != 10*time.Minute || co.Detect.MaxSuspectsPerTarget != 3 || co.Discover != (FileTargets{Path: "targets.json"}) {
		t.Errorf("options %+v do not follow %+v", co, good)
	}
	for _, tc := range []struct {
		edit func(*CommandOptions)
		want string
	}{
		{func(c *CommandOptions) { c.Every = 0 }, "Every must be more than zero"},
		{func(c *CommandOptions) { c.For = -time.Second }, "For must not be negative"},
		{func(c *CommandOptions) { c.Concurrency = 0 }, "Concurrency must be at least 1"},
		{func(c *CommandOptions) { c.Window = 2 * time.Minute }, "must hold at least 5 captures"},
		{func(c *CommandOptions) { c.MaxSuspects = 0 }, "MaxSuspects must be at least 1"},
		{func(c *CommandOptions) { c.Shard = "3/2" }, "Shard: "},
		{func(c *CommandOptions) { c.Retain = "soon" }, "Retain: "},
		{func(c *CommandOptions) { c.MaxPush = "0" }, "MaxPush \"0\": want a size"},
		{func(c *CommandOptions) { c.Prometheus = "http://127.0.0.1:9090" }, "not both"},
		{func(c *CommandOptions) { c.NoStore = true }, "NoStore needs Forward"},
		{func(c *CommandOptions) { c.Targets = "" }, "nothing to collect"},
	} {
		c := good
		tc.edit(&c)
		if _, err := c.Options(); !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want an option error containing %q", c, err, tc.want)
		}
	}
}
