package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/leaklab/leaklab/profiles"
	"github.com/spf13/cobra"
)

type captureOptions struct {
	target  string
	typ     string
	seconds int
	out     string
	noGC    bool
	timeout time.Duration
	labels  []string
}

func newCmdCapture(f *factory) *cobra.Command {
	opts := &captureOptions{}
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
			opts.target = args[0]
			return captureRun(cmd, f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.typ, "type", "", "heap, allocs, goroutine, goroutineleak, cpu, mutex, block or all (default heap, or the URL's)")
	fl.IntVar(&opts.seconds, "seconds", 0, "cpu profile duration (default 10), or a delta over N seconds for heap/allocs/mutex/block")
	fl.StringVar(&opts.out, "out", "", "write the profile to this file instead of the store")
	fl.BoolVar(&opts.noGC, "no-gc", false, "do not ask the target to collect garbage before a heap profile")
	fl.DurationVar(&opts.timeout, "timeout", 0, "give up after this long (default --seconds + 30s)")
	fl.StringArrayVar(&opts.labels, "label", nil, "KEY=VALUE stored with the profile (repeatable)")
	return cmd
}

func captureRun(cmd *cobra.Command, f *factory, opts *captureOptions) error {
	if opts.seconds < 0 {
		return usageErrorf("--seconds must not be negative")
	}
	labels, err := profiles.ParseLabels(opts.labels)
	if err != nil {
		return err
	}
	fo := profiles.FetchOptions{Type: opts.typ, Seconds: opts.seconds, NoGC: opts.noGC, Timeout: opts.timeout, Labels: labels}
	if opts.typ == "all" {
		if opts.out != "" {
			return usageErrorf("--out takes one profile; --type all saves each type in the store")
		}
		return captureAll(cmd, f, opts, fo)
	}
	if _, _, _, err := profiles.ProfileURL(opts.target, fo); err != nil {
		return err // an option error: exit 2
	}
	var store *profiles.Store
	if opts.out == "" {
		if store, err = f.openStore(); err != nil {
			return err
		}
	}
	if f.streams.ErrIsTerminal && (opts.seconds > 0 || opts.typ == profiles.TypeCPU) {
		fmt.Fprintf(f.streams.ErrOut, "capturing %s from %s…\n", orDefault(opts.typ, "profile"), opts.target)
	}
	rep, err := profiles.Capture(cmd.Context(), opts.target, fo, store, opts.out)
	if err != nil {
		return err
	}
	return f.render(rep, rep.WriteText)
}

func captureAll(cmd *cobra.Command, f *factory, opts *captureOptions, fo profiles.FetchOptions) error {
	store, err := f.openStore()
	if err != nil {
		return err
	}
	reps, failed, err := profiles.CaptureAll(cmd.Context(), opts.target, fo, store)
	if err != nil {
		return err
	}
	if err := f.render(reps, reps.WriteText); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s: could not capture %s (see above)", opts.target, strings.Join(failed, ", "))
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
