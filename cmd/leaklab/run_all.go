package main

import (
	"context"

	"github.com/leaklab/leaklab/leaks"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runAllOptions are run's flags for starting the whole catalog at once.
type runAllOptions struct {
	all         bool
	variants    string
	basePort    int
	targetsFile string
}

func addRunAllFlags(fl *pflag.FlagSet, o *runAllOptions) {
	fl.BoolVar(&o.all, "all", false, "run every service in the catalog, each in its own process, on consecutive ports")
	fl.StringVar(&o.variants, "variants", "leaky", "with --all: which twins to run: leaky, fixed or both")
	fl.IntVar(&o.basePort, "base-port", leaks.DefaultBasePort, "with --all: the first service's port on 127.0.0.1; the others follow")
	fl.StringVar(&o.targetsFile, "targets-file", "", "with --all: write a Prometheus file_sd targets file (labels service, variant) here")
}

// rejectAllOnlyFlags refuses --all's flags on a single-service run, where
// they would be ignored silently.
func rejectAllOnlyFlags(cmd *cobra.Command) error {
	for _, name := range []string{"variants", "base-port", "targets-file"} {
		if cmd.Flags().Changed(name) {
			return usageErrorf("--%s works with --all only", name)
		}
	}
	return nil
}

// runAllRun starts every catalog service as its own 'leaklab run NAME'
// child process (see leaks.StartAll), prints what listens, and runs them
// until interrupted.
func runAllRun(ctx context.Context, cmd *cobra.Command, f *factory, opts *runOptions) error {
	fl := cmd.Flags()
	allOpts, err := leaks.AllCommandOptions{
		AllOptions: leaks.AllOptions{BasePort: opts.all.basePort, TargetsFile: opts.all.targetsFile,
			MaxLeak: opts.maxLeak, Pyroscope: opts.pyroscope, Quiet: opts.quiet, Stderr: f.streams.ErrOut},
		Variants: opts.all.variants, VariantsSet: fl.Changed("variants"), Fixed: opts.fixed,
		AddrSet: fl.Changed("addr"), Public: opts.public,
	}.Options()
	if err != nil {
		return err
	}
	all, err := leaks.StartAll(allOpts)
	if err != nil {
		return err
	}
	report := all.Report()
	if f.output == outputJSON {
		// One line, like 'run', so a script can read it as soon as all listen.
		err = renderJSONLine(f.streams.Out, report)
	} else {
		err = report.WriteText(f.streams.Out)
	}
	if err != nil {
		all.Stop()
		return err
	}
	return all.Wait(ctx)
}
