package main

import (
	"fmt"
	"io"
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

// capturedReport is one saved profile in capture's output.
type capturedReport struct {
	profiles.Meta
	File    string `json:"file,omitempty"`
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

func captureRun(cmd *cobra.Command, f *factory, opts *captureOptions) error {
	if opts.seconds < 0 {
		return usageErrorf("--seconds must not be negative")
	}
	labels, err := parseLabels(opts.labels)
	if err != nil {
		return err
	}
	fo := profiles.FetchOptions{Type: opts.typ, Seconds: opts.seconds, NoGC: opts.noGC, Timeout: opts.timeout, Labels: labels}
	if opts.typ == "all" {
		if opts.out != "" {
			return usageErrorf("--out takes one profile; --type all saves each type in the store")
		}
		fo.KeepRaw = true
		return captureAll(cmd, f, opts, fo)
	}
	if _, _, _, err := profiles.ProfileURL(opts.target, fo); err != nil {
		return err // an option error: exit 2
	}
	var store *profiles.Store
	if opts.out == "" {
		if store, err = openStore(); err != nil {
			return err
		}
		fo.KeepRaw = true // stored as received, not gzipped a second time
	}
	if f.streams.ErrIsTerminal && (opts.seconds > 0 || opts.typ == profiles.TypeCPU) {
		fmt.Fprintf(f.streams.ErrOut, "capturing %s from %s…\n", orDefault(opts.typ, "profile"), opts.target)
	}
	c, err := profiles.Fetch(cmd.Context(), opts.target, fo)
	if err != nil {
		return err
	}
	rep := capturedReport{}
	if opts.out != "" {
		if err := profiles.WriteFile(opts.out, c); err != nil {
			return fmt.Errorf("cannot write %s: %w", opts.out, err)
		}
		rep.Meta, rep.File = c.Meta, opts.out
	} else if rep.Meta, err = store.SaveRaw(c, c.Raw()); err != nil {
		return err
	}
	return f.render(rep, func(w io.Writer) error {
		return writeCaptured(w, rep)
	})
}

func captureAll(cmd *cobra.Command, f *factory, opts *captureOptions, fo profiles.FetchOptions) error {
	store, err := openStore()
	if err != nil {
		return err
	}
	var reps []capturedReport
	var failed []string
	for _, r := range profiles.FetchAll(cmd.Context(), opts.target, fo) {
		rep := capturedReport{Meta: profiles.Meta{Type: r.Type, Target: opts.target}}
		switch {
		case r.Skipped:
			rep.Skipped = r.Err.Error()
		case r.Err != nil:
			rep.Error = r.Err.Error()
			failed = append(failed, r.Type)
		default:
			if rep.Meta, err = store.SaveRaw(r.Captured, r.Captured.Raw()); err != nil {
				return err
			}
		}
		reps = append(reps, rep)
	}
	if err := f.render(reps, func(w io.Writer) error {
		for _, rep := range reps {
			if err := writeCaptured(w, rep); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s: could not capture %s (see above)", opts.target, strings.Join(failed, ", "))
	}
	return nil
}

func writeCaptured(w io.Writer, rep capturedReport) error {
	switch {
	case rep.Skipped != "":
		_, err := fmt.Fprintf(w, "skipped %s: %s\n", rep.Type, rep.Skipped)
		return err
	case rep.Error != "":
		_, err := fmt.Fprintf(w, "failed  %s: %s\n", rep.Type, rep.Error)
		return err
	}
	where := rep.ID
	if rep.File != "" {
		where = rep.File
	}
	service := ""
	if rep.Service != "" {
		service = " (" + rep.Service + ")"
	}
	_, err := fmt.Fprintf(w, "saved %s: %s profile of %s%s, %d samples\n", where, rep.Type, rep.Target, service, rep.Samples)
	return err
}

func parseLabels(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--label %q: want KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

func openStore() (*profiles.Store, error) {
	dir, err := profiles.DefaultDir()
	if err != nil {
		return nil, err
	}
	return profiles.Open(dir)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
