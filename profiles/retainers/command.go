package retainers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
)

// CommandOptions are a scan as 'leaklab retainers' takes it: the target
// as a PID or a loopback URL, where the snapshot goes, how much to show.
type CommandOptions struct {
	Target   string // a PID, or the URL of a service on this machine
	MaxPause time.Duration
	Top      int // chains shown; 0 shows all
	MaxDepth int
	Out      string // also write the pprof profile here ("": no file)
	Hold     time.Duration
	// OpenStore opens the profile store the snapshot is saved in; nil
	// saves nothing.
	OpenStore func() (*profiles.Store, error)
	Progress  func(msg string)
}

// ParseTarget reads a PID or a URL (whose listening process is looked
// up) and returns the PID and how the store records the target.
func ParseTarget(target string) (pid int, stored string, err error) {
	pid, err = strconv.Atoi(target)
	if err != nil {
		if !strings.Contains(target, "://") {
			return 0, "", opterr.Errorf("target", "%q is neither a PID nor a URL like http://127.0.0.1:8080", target)
		}
		if pid, err = PIDForURL(target); err != nil {
			return 0, "", err
		}
		return pid, target, nil
	}
	if pid <= 0 {
		return 0, "", opterr.Errorf("target", "PID must be positive, not %d", pid)
	}
	return pid, "pid:" + target, nil
}

// Run checks c, scans the target, saves the snapshot (in the store and
// Out) and returns the report as shown. Refused options are
// *opterr.Error, reported before the target is touched.
func (c CommandOptions) Run(ctx context.Context) (Shown, error) {
	if c.MaxPause < 0 || c.Top < 0 || c.MaxDepth < 1 {
		return Shown{}, opterr.Combination([]string{"MaxPause", "Top", "MaxDepth"}, "MaxPause and Top must not be negative, MaxDepth at least 1")
	}
	pid, stored, err := ParseTarget(c.Target)
	if err != nil {
		return Shown{}, err
	}
	var st *profiles.Store
	if c.OpenStore != nil {
		if st, err = c.OpenStore(); err != nil {
			return Shown{}, err
		}
	}
	rep, err := Scan(ctx, pid, Options{MaxPause: c.MaxPause, MaxDepth: c.MaxDepth, HoldAttached: c.Hold, Progress: c.Progress})
	if err != nil {
		return Shown{}, err
	}
	captured := rep.Captured(stored)
	var id string
	if c.Out != "" {
		if err := profiles.WriteFile(c.Out, captured); err != nil {
			return Shown{}, fmt.Errorf("cannot write %s: %w", c.Out, err)
		}
	}
	if st != nil {
		meta, err := st.Save(captured)
		if err != nil {
			return Shown{}, err
		}
		id = meta.ID
	}
	return Show(rep, c.Top, id, c.Out), nil
}
