package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/profiles/watch"
	"github.com/spf13/cobra"
)

// demoService leaks both goroutines and memory, so the demo shows both
// kinds of suspect.
const demoService = "wallet-callbacks"

func newCmdDemo(f *factory) *cobra.Command {
	var name string
	var dur, every time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a leaky service under load, watch it, and name the culprit (under a minute)",
		Long: `The one-command tour: start a leaky sample service and its load in this
process, watch it with 'leaklab watch', print the report naming the leaking
function, and say what to try next. Nothing to install; it takes about 30s.`,
		Example: `  leaklab demo
  leaklab demo --service unbounded-cache --for 40s
  leaklab demo --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := leaks.Lookup(name)
			if err != nil {
				return &usageError{err: err}
			}
			logger := slog.New(slog.NewTextHandler(f.streams.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
			opts := exercise.DemoOptions{For: dur, Every: every, Service: leaks.Options{Addr: "127.0.0.1:0", Logger: logger},
				Started: func(url string, rate float64) {
					fmt.Fprintf(f.streams.ErrOut, "leaklab demo: %s (leaky) runs at %s under %g requests/s; watching it for %s...\n", svc.Name, url, rate, dur)
				}}
			if store, err := f.openStore(); err == nil {
				opts.Store = store
			}
			if f.streams.ErrIsTerminal {
				opts.Progress = func(p watch.Progress) {
					fmt.Fprintf(f.streams.ErrOut, "\r\033[Ksnapshot %d/%d", p.Snapshot, p.Total)
					if p.Snapshot == p.Total {
						fmt.Fprintln(f.streams.ErrOut)
					}
				}
			}
			demoed, err := exercise.Demo(cmd.Context(), svc, opts)
			if err != nil {
				return err
			}
			return f.render(demoed.Watch, demoed.WriteText)
		},
	}
	cmd.Flags().StringVar(&name, "service", demoService, "the sample service to run")
	cmd.Flags().DurationVar(&dur, "for", 30*time.Second, "how long to watch")
	cmd.Flags().DurationVar(&every, "every", 2*time.Second, "time between snapshots")
	return cmd
}
