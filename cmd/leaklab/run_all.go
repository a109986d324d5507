package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/leaklab/leaklab/dashboards"
	"github.com/leaklab/leaklab/internal/childproc"
	"github.com/leaklab/leaklab/leaks"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultBasePort is where 'run --all' starts numbering; the shipped compose
// file and README use the same ports.
const defaultBasePort = 9101

// How long a child may take to listen, and to exit after SIGTERM.
const (
	childStartTimeout = 30 * time.Second
	childStopTimeout  = 10 * time.Second
	signalGrace       = 2 * time.Second
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
	fl.IntVar(&o.basePort, "base-port", defaultBasePort, "with --all: the first service's port on 127.0.0.1; the others follow")
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

// runningChild is one service 'run --all' started.
type runningChild struct {
	Name    string        `json:"name"`
	Variant leaks.Variant `json:"variant"`
	URL     string        `json:"url"`
	Metrics string        `json:"metrics"`
	PID     int           `json:"pid"`

	addr string
	proc *childproc.Proc // nil when its start failed
}

// runAllReport is what 'run --all' prints once every service listens.
type runAllReport struct {
	Services    []*runningChild `json:"services"`
	TargetsFile string          `json:"targets_file,omitempty"`
}

// runAllRun starts every catalog service as its own 'leaklab run NAME'
// child process. Separate processes are the point: the Go runtime metrics
// (heap, goroutines, GC) are per process, so only then does each service's
// go_* series show its own leak rather than the sum of all of them, and a
// service that misbehaves cannot take the others down.
func runAllRun(ctx context.Context, cmd *cobra.Command, f *factory, opts *runOptions) error {
	variants, err := allVariants(cmd, opts)
	if err != nil {
		return err
	}
	// Checked as 'run NAME' checks them, so a bad value is one error here
	// rather than one from every child.
	if _, err := leaks.ParseMaxLeak(opts.maxLeak); err != nil {
		return err
	}
	if err := leaks.CheckPyroscopeURL(opts.pyroscope); err != nil {
		return err
	}
	services := leaks.All()
	count := len(services) * len(variants)
	if opts.all.basePort < 1 || opts.all.basePort+count-1 > 65535 {
		return usageErrorf("--base-port %d: %d services need ports %d to %d, which must lie in 1-65535",
			opts.all.basePort, count, opts.all.basePort, opts.all.basePort+count-1)
	}
	if t := opts.all.targetsFile; t != "" {
		// Checked before starting anything, so a typo costs no startup.
		if fi, err := os.Stat(filepath.Dir(t)); err != nil || !fi.IsDir() {
			return usageErrorf("--targets-file %s: directory %s does not exist", t, filepath.Dir(t))
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the leaklab binary to start the services with: %w", err)
	}

	var children []*runningChild
	for _, v := range variants {
		for _, svc := range services {
			port := opts.all.basePort + len(children)
			children = append(children, &runningChild{Name: svc.Name, Variant: v, addr: "127.0.0.1:" + strconv.Itoa(port)})
		}
	}
	if err := startChildren(exe, opts, children, f.streams.ErrOut); err != nil {
		stopChildren(children)
		return err
	}

	report := runAllReport{Services: children, TargetsFile: opts.all.targetsFile}
	if opts.all.targetsFile != "" {
		targets := make([]dashboards.Target, 0, len(children))
		for _, c := range children {
			targets = append(targets, dashboards.Target{Addr: c.addr, Service: c.Name, Variant: string(c.Variant)})
		}
		if err := dashboards.WriteTargetsFile(opts.all.targetsFile, targets); err != nil {
			stopChildren(children)
			return err
		}
		// Once the services are gone, Prometheus should stop scraping
		// them: leave an empty target list, not addresses nobody serves.
		defer func() {
			if err := dashboards.WriteTargetsFile(opts.all.targetsFile, nil); err != nil {
				fmt.Fprintf(f.streams.ErrOut, "leaklab: warning: %v\n", err)
			}
		}()
	}
	if f.output == outputJSON {
		// One line, like 'run', so a script can read it as soon as all listen.
		err = renderJSONLine(f.streams.Out, report)
	} else {
		err = writeRunAllBanner(f.streams.Out, report)
	}
	if err != nil {
		stopChildren(children)
		return err
	}

	procs := make([]*childproc.Proc, len(children))
	byProc := make(map[*childproc.Proc]*runningChild, len(children))
	for i, c := range children {
		procs[i], byProc[c.proc] = c.proc, c
	}
	firstExit := childproc.FirstExit(procs)
	select {
	case <-ctx.Done():
		return stopChildren(children)
	case p := <-firstExit:
		// Ctrl-C in a terminal signals the whole process group, and a child
		// may exit a moment before our own handler cancels ctx: that is a
		// shutdown, not a failure.
		select {
		case <-ctx.Done():
			return stopChildren(children)
		case <-time.After(signalGrace):
		}
		stopChildren(children)
		c, err := byProc[p], p.Err()
		if err == nil {
			err = errors.New("exit status 0")
		}
		return fmt.Errorf("%s (%s) on %s stopped unexpectedly (%v), so all services were stopped", c.Name, c.Variant, c.addr, err)
	}
}

// allVariants resolves --variants, accepting --fixed as a short form of
// --variants fixed, and rejects run's single-service flags.
func allVariants(cmd *cobra.Command, opts *runOptions) ([]leaks.Variant, error) {
	fl := cmd.Flags()
	if fl.Changed("addr") {
		return nil, usageErrorf("--addr names one service's address; with --all use --base-port")
	}
	if opts.public {
		return nil, usageErrorf("--public is not available with --all: the services stay on 127.0.0.1")
	}
	choice := opts.all.variants
	if opts.fixed {
		if fl.Changed("variants") && choice != "fixed" {
			return nil, usageErrorf("--fixed and --variants %s disagree; use one of them", choice)
		}
		choice = "fixed"
	}
	switch choice {
	case "leaky":
		return []leaks.Variant{leaks.Leaky}, nil
	case "fixed":
		return []leaks.Variant{leaks.Fixed}, nil
	case "both":
		return []leaks.Variant{leaks.Leaky, leaks.Fixed}, nil
	}
	return nil, usageErrorf("--variants must be leaky, fixed or both, not %q", choice)
}

// startChildren starts every child at once and waits until each has
// printed its 'run --output json' line, which it does once it listens.
func startChildren(exe string, opts *runOptions, children []*runningChild, stderr io.Writer) error {
	errs := make([]error, len(children))
	var wg sync.WaitGroup
	for i, c := range children {
		args := []string{exe, "run", c.Name, "--addr", c.addr, "--output", "json", "--max-leak", opts.maxLeak}
		if c.Variant == leaks.Fixed {
			args = append(args, "--fixed")
		}
		if opts.pyroscope != "" {
			args = append(args, "--pyroscope", opts.pyroscope)
		}
		if opts.quiet {
			args = append(args, "--quiet")
		}
		// The children's logs name their service.
		proc, err := childproc.Start(childproc.Spec{Argv: args, Stderr: stderr, FirstLine: true})
		if err != nil {
			errs[i] = fmt.Errorf("starting %s (%s): %w", c.Name, c.Variant, err)
			continue
		}
		c.proc, c.PID = proc, proc.PID()
		wg.Go(func() {
			line, err := proc.WaitFirstLine(childStartTimeout)
			var exited *childproc.ExitedError
			switch {
			case errors.As(err, &exited):
				errs[i] = fmt.Errorf("%s (%s) on %s exited before listening (its message is above; if the port is taken, choose another --base-port)", c.Name, c.Variant, c.addr)
			case err != nil:
				errs[i] = fmt.Errorf("%s (%s) on %s did not listen within %s", c.Name, c.Variant, c.addr, childStartTimeout)
			default:
				var started struct {
					URL     string `json:"url"`
					Metrics string `json:"metrics"`
				}
				if err := json.Unmarshal(line, &started); err != nil {
					errs[i] = fmt.Errorf("%s (%s) on %s printed %q instead of its JSON line (its message is above; if the port is taken, choose another --base-port)", c.Name, c.Variant, c.addr, line)
				} else {
					c.URL, c.Metrics = started.URL, started.Metrics
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopChildren sends SIGTERM to every child still running, waits for them,
// and kills those that ignore it. It reports the first unclean exit.
func stopChildren(children []*runningChild) error {
	return stopChildrenWithin(children, childStopTimeout)
}

// stopChildrenWithin is stopChildren with the time the children have, all
// together, to exit after SIGTERM; once it is up, the rest are killed.
func stopChildrenWithin(children []*runningChild, timeout time.Duration) error {
	procs := make([]*childproc.Proc, len(children))
	for i, c := range children {
		procs[i] = c.proc
	}
	for i, err := range childproc.StopAll(procs, timeout) {
		if err == nil {
			continue
		}
		var killed *childproc.KilledError
		if errors.As(err, &killed) {
			err = fmt.Errorf("ignored SIGTERM for %s and was killed", timeout)
		}
		c := children[i]
		return fmt.Errorf("%s (%s) did not stop cleanly: %w", c.Name, c.Variant, err)
	}
	return nil
}

func writeRunAllBanner(w io.Writer, r runAllReport) error {
	fmt.Fprintf(w, "%d sample services are listening, each in its own process:\n\n", len(r.Services))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVICE\tVARIANT\tURL\tPID")
	for _, c := range r.Services {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", c.Name, c.Variant, c.URL, c.PID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.TargetsFile != "" {
		fmt.Fprintf(w, "\nPrometheus targets (file_sd, labels service and variant): %s\n", r.TargetsFile)
	}
	_, err := fmt.Fprintf(w, "\nDrive one with 'leaklab load URL' or curl (see 'leaklab services NAME'). Ctrl-C stops them all.\n")
	return err
}
