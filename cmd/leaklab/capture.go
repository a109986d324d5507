package main

import (
	"fmt"

	"github.com/leaklab/leaklab/profiles"
	"github.com/spf13/cobra"
)

func newCmdCapture(f *factory) *cobra.Command {
	opts := &profiles.CaptureCommandOptions{}
	cmd := &cobra.Command{
		Use:   "capture URL",
		Short: "Capture a pprof profile from a live service into the profile store",
		Long: `Capture a profile from a service's /debug/pprof (net/http/pprof), check that
it is a profile, and save it in the local profile store ($LEAKLAB_HOME, else
$XDG_DATA_HOME/leaklab, else ~/.local/share/leaklab), or in one file with --out.

URL is the service's base URL (http://127.0.0.1:8080) or a full
/debug/pprof/NAME URL. Heap profiles are taken after a garbage collection
(?gc=1) so in-use numbers are current; --no-gc skips it. --seconds is the cpu
profile's duration, or for heap, allocs, mutex and block asks for a delta over
that many seconds. The goroutineleak profile exists only when the target was
built with GOEXPERIMENT=goroutineleakprofile.`,
		Example: `  leaklab capture http://127.0.0.1:8080
  leaklab capture http://127.0.0.1:8080 --type goroutine
  leaklab capture http://127.0.0.1:8080 --type cpu --seconds 5 --out cpu.pb.gz
  leaklab capture http://127.0.0.1:8080/debug/pprof/heap --label env=staging
  leaklab capture http://127.0.0.1:8080 --type all --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			return captureRun(cmd, f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Type, "type", "", "heap, allocs, goroutine, goroutineleak, cpu, mutex, block or all (default heap, or the URL's)")
	fl.IntVar(&opts.Seconds, "seconds", 0, "cpu profile duration (default 10), or a delta over N seconds for heap/allocs/mutex/block")
	fl.StringVar(&opts.Out, "out", "", "write the profile to this file instead of the store")
	fl.BoolVar(&opts.NoGC, "no-gc", false, "do not ask the target to collect garbage before a heap profile")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "give up after this long (default --seconds + 30s)")
	fl.StringArrayVar(&opts.Labels, "label", nil, "KEY=VALUE stored with the profile (repeatable)")
	return cmd
}

func captureRun(cmd *cobra.Command, f *factory, opts *profiles.CaptureCommandOptions) error {
	co := *opts
	co.OpenStore = f.openStore
	if f.streams.ErrIsTerminal {
		co.Waiting = func(what, target string) { fmt.Fprintf(f.streams.ErrOut, "capturing %s from %s…\n", what, target) }
	}
	caps, err := co.Run(cmd.Context())
	if err != nil {
		return err
	}
	if err := f.render(caps, caps.WriteText); err != nil {
		return err
	}
	return caps.Failure()
}
