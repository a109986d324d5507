package exercise

import (
	"context"
	"fmt"
	"github.com/leaklab/leaklab/internal/opterr"
	"io"
	"text/tabwriter"
	"time"

	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/profiles/watch"
)

// DemoOptions configure Demo.
type DemoOptions struct {
	// For is how long to watch, Every the time between snapshots.
	For, Every time.Duration
	// Service configures the sample service (its address, its logger).
	Service leaks.Options
	// Store, when not nil, keeps the snapshots.
	Store *profiles.Store
	// Started, when not nil, is told where the service runs and at what
	// rate it is loaded, before the watch starts.
	Started func(url string, rate float64)
	// Progress, when not nil, is told of each snapshot.
	Progress func(watch.Progress)
}

// Demoed is what the demo saw: the watch of a leaky service.
type Demoed struct {
	Watch *watch.Report
	svc   *leaks.Service
}

// Demo runs a leaky sample service under its steady load, watches it and
// stops it: the one-command tour.
func Demo(ctx context.Context, svc *leaks.Service, opts DemoOptions) (*Demoed, error) {
	if opts.For < opts.Every || opts.Every <= 0 {
		return nil, opterr.Combination([]string{"For", "Every"}, "For must be at least Every, and both positive")
	}
	sess, err := Start(ctx, svc, SessionOptions{Service: opts.Service, LoadFor: opts.For + 10*time.Second})
	if err != nil {
		return nil, err
	}
	defer sess.Stop()
	if opts.Started != nil {
		opts.Started(sess.Server.URL(), sess.Rate)
	}
	wo := watch.Options{Every: opts.Every, For: opts.For, DetectorOptions: watch.DetectorOptions{Own: watch.OwnCodeFor("github.com/leaklab/leaklab/leaks")},
		Store: opts.Store, Progress: opts.Progress}
	rep, err := watch.Run(ctx, sess.Server.URL(), wo)
	if err != nil {
		return nil, err
	}
	return &Demoed{Watch: rep, svc: svc}, nil
}

// CulpritNamed says whether a suspect is the service's culprit.
func (d *Demoed) CulpritNamed() bool {
	for _, s := range d.Watch.Suspects {
		if Matches(s.Function, d.svc.Culprit) {
			return true
		}
	}
	return false
}

// WriteText writes the watch report, the culprit when the watch named it,
// and what to try next.
func (d *Demoed) WriteText(w io.Writer) error {
	svc := d.svc
	if err := watch.WriteText(w, d.Watch); err != nil {
		return err
	}
	if d.CulpritNamed() {
		fmt.Fprintf(w, "\nThe culprit is %s.\n%s\n", svc.Culprit, svc.Explanation)
	}
	fmt.Fprintln(w, "\nWhat next:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  leaklab services\tthe other %d leaky services\n", len(leaks.All())-1)
	fmt.Fprintf(tw, "  leaklab exercise start unbounded-cache\thunt a leak yourself, with hints\n")
	fmt.Fprintf(tw, "  leaklab run %s --fixed\tthe fixed twin: watch it stay flat\n", svc.Name)
	fmt.Fprintf(tw, "  leaklab watch URL\tpoint it at your own service (it needs net/http/pprof)\n")
	return tw.Flush()
}
