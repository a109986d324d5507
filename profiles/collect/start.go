package collect

import (
	"context"
	"log/slog"

	"github.com/leaklab/leaklab/profiles"
)

// Started says where a collector run by RunCommand listens and stores;
// 'leaklab collect --output json' prints it as its first line, so a
// script knows where to push as soon as the collector listens.
type Started struct {
	URL     string `json:"url,omitempty"`
	Ingest  string `json:"ingest,omitempty"`
	Metrics string `json:"metrics,omitempty"`
	Store   string `json:"store,omitempty"`
}

// CommandEnv is what a collector run from a command gets from around it.
type CommandEnv struct {
	// OpenStore opens the profile store; it is not called with NoStore.
	OpenStore func() (*profiles.Store, error)
	// Public allows a non-loopback Listen address (see Listen).
	Public bool
	Logger *slog.Logger
	// Started, when set, is called once the collector listens, before
	// its first capture; an error from it stops the run.
	Started func(Started) error
}

// RunCommand checks c, opens the store and the listener, and runs the
// collector for c.For (or until ctx is done), as 'leaklab collect' does.
// Refused options are *opterr.Error, reported before anything is opened.
func (c CommandOptions) RunCommand(ctx context.Context, env CommandEnv) (Summary, error) {
	co, err := c.Options()
	if err != nil {
		return Summary{}, err
	}
	co.Logger = env.Logger
	started := Started{}
	if !c.NoStore {
		if co.Store, err = env.OpenStore(); err != nil {
			return Summary{}, err
		}
		started.Store = co.Store.Dir()
	}
	if c.Listen != "" {
		ln, err := Listen(c.Listen, env.Public)
		if err != nil {
			return Summary{}, err
		}
		co.Listener = ln
		started.URL = "http://" + ln.Addr().String()
		started.Ingest, started.Metrics = started.URL+"/ingest", started.URL+"/metrics"
	}
	col, err := New(co)
	if err != nil {
		if co.Listener != nil {
			co.Listener.Close()
		}
		return Summary{}, err
	}
	if env.Started != nil {
		if err := env.Started(started); err != nil {
			if co.Listener != nil {
				co.Listener.Close()
			}
			return Summary{}, err
		}
	}
	if started.URL != "" {
		env.Logger.Info("listening", "ingest", started.Ingest, "metrics", started.Metrics)
	}
	if c.For > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.For)
		defer cancel()
	}
	sum, err := col.Run(ctx)
	if err != nil {
		return sum, err
	}
	env.Logger.Info("stopped")
	return sum, nil
}
