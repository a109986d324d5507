package check

import (
	"context"
	"fmt"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
)

// CommandOptions are a check's options as 'leaklab check' takes them: the
// request as text, the retained-heap limit as a size, and a limit given
// as zero meaning that nothing may stay (rather than the default).
type CommandOptions struct {
	Drive         string // 'METHOD PATH' (see ParseDrive); required
	Requests      int
	Warmup        int // requests of the warm-up round; 0: Requests
	Rounds        int
	Rate          float64
	Connections   int
	MaxRetained   string // a size, e.g. 64B or 1KiB; 0 fails any steady growth
	MaxGoroutines float64
	// MaxGoroutinesSet says MaxGoroutines was given: an explicit 0 means
	// none may stay.
	MaxGoroutinesSet bool
	// Own names the service's own code; empty asks the target's
	// go_build_info metric.
	Own         []string
	AllowRemote bool
}

// Options checks c and turns it into Options for target. Refused options
// are *opterr.Error, without anything sent to the target; an empty Own is
// then looked up on the target.
func (c CommandOptions) Options(ctx context.Context, target string) (Options, error) {
	if c.Drive == "" {
		return Options{}, opterr.Errorf("Drive", "Drive is required, e.g. Drive 'GET /product?id={i}'")
	}
	drive, err := ParseDrive(c.Drive)
	if err != nil {
		return Options{}, &opterr.Error{Option: "Drive", Err: err}
	}
	switch {
	case c.Requests < 1:
		return Options{}, opterr.Errorf("Requests", "Requests must be at least 1")
	case c.Warmup < 0:
		return Options{}, opterr.Errorf("Warmup", "Warmup cannot be negative (0: as many as Requests)")
	case c.Rounds < 2:
		return Options{}, opterr.Errorf("Rounds", "Rounds must be at least 2 (a growth needs two measurements after the baseline)")
	case c.Rate <= 0:
		return Options{}, opterr.Errorf("Rate", "Rate must be positive (requests per second)")
	case c.Connections < 1:
		return Options{}, opterr.Errorf("Connections", "Connections must be at least 1")
	case c.MaxGoroutines < 0:
		return Options{}, opterr.Errorf("MaxGoroutines", "MaxGoroutines cannot be negative")
	}
	maxRetained, err := bytesize.Parse(c.MaxRetained)
	if err != nil {
		return Options{}, &opterr.Error{Option: "MaxRetained", Err: fmt.Errorf("MaxRetained: %w", err)}
	}
	o := Options{
		Target: target, Drive: drive, Requests: c.Requests, Warmup: c.Warmup, Rounds: c.Rounds, Rate: c.Rate,
		Connections: c.Connections, MaxRetainedPerRequest: float64(maxRetained),
		MaxGoroutinesPerRequest: c.MaxGoroutines, AllowRemote: c.AllowRemote,
	}
	if c.MaxGoroutinesSet && c.MaxGoroutines == 0 {
		o.MaxGoroutinesPerRequest = -1 // an explicit 0: none may stay
	}
	if maxRetained == 0 {
		o.MaxRetainedPerRequest = 1e-9 // an explicit 0: any steady growth fails
	}
	o.Own = profiles.OwnCodeFor(c.Own...)
	if len(c.Own) == 0 {
		o.Own = profiles.OwnCodeFor(profiles.DetectModule(ctx, nil, target))
	}
	return o, nil
}
