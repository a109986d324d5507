package check

import (
	"context"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
)

// A command line's options become Options, or an option error naming
// what to fix; an explicit zero limit means nothing may stay.
func TestCommandOptions(t *testing.T) {
	good := CommandOptions{Drive: "get /x?id={i}", Requests: 10, Rounds: 3, Rate: 50, Connections: 4,
		MaxRetained: "1KiB", MaxGoroutines: 0.5, Own: []string{"example.com/svc"}}
	o, err := good.Options(context.Background(), "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if o.Drive.Method != "GET" || o.Drive.Path != "/x?id={i}" || o.Requests != 10 || o.Rounds != 3 || o.Rate != 50 ||
		o.Connections != 4 || o.MaxRetainedPerRequest != 1024 || o.MaxGoroutinesPerRequest != 0.5 || o.Target != "http://127.0.0.1:1" {
		t.Errorf("options %+v do not follow %+v", o, good)
	}
	zero := good
	zero.MaxRetained, zero.MaxGoroutines, zero.MaxGoroutinesSet = "0", 0, true
	if o, err = zero.Options(context.Background(), "http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if o.MaxGoroutinesPerRequest != -1 || o.MaxRetainedPerRequest <= 0 || o.MaxRetainedPerRequest > 1e-6 {
		t.Errorf("explicit zero limits gave goroutines %v, retained %v; want -1 (none) and a tiny positive", o.MaxGoroutinesPerRequest, o.MaxRetainedPerRequest)
	}
	for _, tc := range []struct {
		edit func(*CommandOptions)
		want string
	}{
		{func(c *CommandOptions) { c.Drive = "" }, "Drive is required"},
		{func(c *CommandOptions) { c.Drive = "GET" }, "a method and a path"},
		{func(c *CommandOptions) { c.Requests = 0 }, "Requests must be at least 1"},
		{func(c *CommandOptions) { c.Rounds = 1 }, "Rounds must be at least 2"},
		{func(c *CommandOptions) { c.Rate = 0 }, "Rate must be positive"},
		{func(c *CommandOptions) { c.Connections = 0 }, "Connections must be at least 1"},
		{func(c *CommandOptions) { c.MaxGoroutines = -1 }, "cannot be negative"},
		{func(c *CommandOptions) { c.MaxRetained = "lots" }, "MaxRetained: "},
	} {
		c := good
		tc.edit(&c)
		_, err := c.Options(context.Background(), "http://127.0.0.1:1")
		if !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want an option error containing %q", c, err, tc.want)
		}
	}
}
