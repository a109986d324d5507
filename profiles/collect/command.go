package collect

import (
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
)

// CommandOptions are a collector's options as 'leaklab collect' takes
// them: sizes and the retention as text, the targets as a file or a
// Prometheus URL, the forward credentials as given.
type CommandOptions struct {
	Targets     string   // a file_sd targets file
	Prometheus  string   // instead of Targets: a Prometheus to ask for targets
	Jobs        []string // with Prometheus: only these jobs
	Types       []string
	Every       time.Duration
	For         time.Duration // how long to run; 0 until stopped
	Timeout     time.Duration
	NoGC        bool
	Concurrency int
	Refresh     time.Duration
	Listen      string // the address pushes come to; empty takes none
	Forward     string
	Credentials ForwardCredentials // its Forward is Forward
	NoStore     bool
	Retain      string // a duration (36h, 7d); "0" keeps everything
	MaxStore    string // a size
	MaxPush     string // a size, more than zero
	Grace       time.Duration
	Window      time.Duration // detection's sliding window; 0 turns it off
	MaxSuspects int
	Shard       string // INDEX/COUNT, or empty
}

// Options checks c and turns it into Options (without Store, Listener and
// Logger, which are the caller's). Refused options are *opterr.Error.
func (c CommandOptions) Options() (Options, error) {
	co := Options{
		Types: c.Types, Every: c.Every, Timeout: c.Timeout, NoGC: c.NoGC, Concurrency: c.Concurrency,
		Refresh: c.Refresh, Forward: c.Forward, Grace: c.Grace,
	}
	switch {
	case c.Every <= 0:
		return co, opterr.Errorf("Every", "Every must be more than zero")
	case c.For < 0:
		return co, opterr.Errorf("For", "For must not be negative")
	case c.Concurrency < 1:
		return co, opterr.Errorf("Concurrency", "Concurrency must be at least 1")
	case c.Window < 0:
		return co, opterr.Errorf("Window", "Window must not be negative (0 turns detection off)")
	case c.MaxSuspects < 1:
		return co, opterr.Errorf("MaxSuspects", "MaxSuspects must be at least 1")
	case c.Window > 0 && c.Window < 5*c.Every:
		return co, opterr.Combination([]string{"Window", "Every"}, "Window (%s) must hold at least 5 captures of Every (%s)", c.Window, c.Every)
	}
	co.Detect = Detection{Window: c.Window, MaxSuspectsPerTarget: c.MaxSuspects}
	if c.Shard != "" {
		sh, err := ParseShard(c.Shard)
		if err != nil {
			return co, opterr.Errorf("Shard", "Shard: %v", err)
		}
		co.Shard = sh
	}
	var err error
	if c.Retain != "0" {
		if co.Retention.MaxAge, err = profiles.ParseDays(c.Retain); err != nil {
			return co, opterr.Errorf("Retain", "Retain: %v (want e.g. 36h or 7d)", err)
		}
	}
	if co.Retention.MaxBytes, err = bytesize.Parse(c.MaxStore); err != nil {
		return co, opterr.Errorf("MaxStore", "MaxStore: %v", err)
	}
	if co.MaxPushBytes, err = bytesize.Parse(c.MaxPush); err != nil || co.MaxPushBytes == 0 {
		return co, opterr.Errorf("MaxPush", "MaxPush %q: want a size such as 16MiB", c.MaxPush)
	}
	// Types, intervals and the forward URL.
	if err := co.Check(); err != nil {
		return co, err
	}
	creds := c.Credentials
	creds.Forward = c.Forward
	if co.ForwardAuth, err = creds.Auth(); err != nil {
		return co, err
	}
	switch {
	case c.Targets != "":
		co.Discover = FileTargets{Path: c.Targets}
	case c.Prometheus != "":
		co.Discover = PrometheusTargets{URL: c.Prometheus, Jobs: c.Jobs}
	}
	switch {
	case c.Targets != "" && c.Prometheus != "":
		return co, opterr.Combination([]string{"Targets", "Prometheus"}, "give Targets or Prometheus, not both")
	case c.NoStore && c.Forward == "":
		return co, opterr.Combination([]string{"NoStore", "Forward"}, "NoStore needs Forward: the profiles must go somewhere")
	case c.Targets == "" && c.Prometheus == "" && c.Listen == "":
		return co, opterr.Combination([]string{"Targets", "Prometheus", "Listen"}, "nothing to collect: give Targets, Prometheus, or a Listen address for pushes")
	}
	return co, nil
}
