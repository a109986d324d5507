package leaks

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

	"github.com/leaklab/leaklab/internal/childproc"
	"github.com/leaklab/leaklab/internal/filesd"
	"github.com/leaklab/leaklab/internal/opterr"
)

// DefaultBasePort is where StartAll starts numbering; the shipped compose
// file and README use the same ports.
const DefaultBasePort = 9101

// How long a child may take to listen, and to exit after SIGTERM.
const (
	childStartTimeout = 30 * time.Second
	childStopTimeout  = 10 * time.Second
	signalGrace       = 2 * time.Second
)

// AllOptions say how StartAll runs the whole catalog.
type AllOptions struct {
	// Exe is the leaklab binary: each service runs as
	// 'Exe run NAME --addr ADDR --output json --max-leak MaxLeak ...'.
	Exe string
	// Variants are the twins to run; every service runs once per variant.
	Variants []Variant
	// BasePort is the first service's port on 127.0.0.1; the others follow.
	BasePort int
	// TargetsFile, when set, receives a Prometheus file_sd targets file
	// (labels service, variant), emptied again by Stop.
	TargetsFile string
	// MaxLeak, Pyroscope and Quiet are passed to every service.
	MaxLeak   string
	Pyroscope string
	Quiet     bool
	// Stderr receives the services' logs, and warnings.
	Stderr io.Writer
}

// Child is one service StartAll started.
type Child struct {
	Name    string  `json:"name"`
	Variant Variant `json:"variant"`
	URL     string  `json:"url"`
	Metrics string  `json:"metrics"`
	PID     int     `json:"pid"`

	addr string
	proc *childproc.Proc // nil when its start failed
}

// AllReport is what StartAll reports once every service listens. As JSON
// it is an output contract.
type AllReport struct {
	Services    []*Child `json:"services"`
	TargetsFile string   `json:"targets_file,omitempty"`
}

// Supervisor runs the whole catalog, one process per service.
type Supervisor struct {
	opts        AllOptions
	report      AllReport
	targetsLeft bool // the targets file lists the services: Stop empties it
}

// CheckAllOptions returns an *opterr.Error for options StartAll would
// refuse, without starting anything. A value every service would refuse
// is refused once, here, rather than once by every child.
func CheckAllOptions(opts AllOptions) error {
	if _, err := ParseMaxLeak(opts.MaxLeak); err != nil {
		return err
	}
	if err := CheckPyroscopeURL(opts.Pyroscope); err != nil {
		return err
	}
	count := len(All()) * len(opts.Variants)
	if opts.BasePort < 1 || opts.BasePort+count-1 > 65535 {
		return opterr.Errorf("BasePort", "BasePort %d: %d services need ports %d to %d, which must lie in 1-65535",
			opts.BasePort, count, opts.BasePort, opts.BasePort+count-1)
	}
	if t := opts.TargetsFile; t != "" {
		// Checked before starting anything, so a typo costs no startup.
		if fi, err := os.Stat(filepath.Dir(t)); err != nil || !fi.IsDir() {
			return opterr.Errorf("TargetsFile", "TargetsFile %s: directory %s does not exist", t, filepath.Dir(t))
		}
	}
	return nil
}

// StartAll starts every catalog service as its own 'leaklab run NAME'
// child process and returns once each listens. Separate processes are the
// point: the Go runtime metrics (heap, goroutines, GC) are per process, so
// only then does each service's go_* series show its own leak rather than
// the sum of all of them, and a service that misbehaves cannot take the
// others down. When it fails, every child it started is stopped.
func StartAll(opts AllOptions) (*Supervisor, error) {
	if err := CheckAllOptions(opts); err != nil {
		return nil, err
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	a := &Supervisor{opts: opts, report: AllReport{TargetsFile: opts.TargetsFile}}
	for _, v := range opts.Variants {
		for _, svc := range All() {
			port := opts.BasePort + len(a.report.Services)
			a.report.Services = append(a.report.Services, &Child{Name: svc.Name, Variant: v, addr: "127.0.0.1:" + strconv.Itoa(port)})
		}
	}
	children := a.report.Services
	if err := startChildren(opts, children); err != nil {
		stopChildrenWithin(children, childStopTimeout)
		return nil, err
	}
	if opts.TargetsFile != "" {
		groups := make([]filesd.Group, 0, len(children))
		for _, c := range children {
			groups = append(groups, filesd.Group{Targets: []string{c.addr}, Labels: map[string]string{"service": c.Name, "variant": string(c.Variant)}})
		}
		if err := writeTargetsFile(opts.TargetsFile, groups); err != nil {
			stopChildrenWithin(children, childStopTimeout)
			return nil, err
		}
		a.targetsLeft = true
	}
	return a, nil
}

// Report is what is running.
func (a *Supervisor) Report() AllReport { return a.report }

// Stop sends SIGTERM to every service still running, waits for them, and
// kills those that ignore it; then it empties the targets file, so that
// Prometheus stops scraping addresses nobody serves. It reports the first
// unclean exit.
func (a *Supervisor) Stop() error {
	err := stopChildrenWithin(a.report.Services, childStopTimeout)
	if a.targetsLeft {
		a.targetsLeft = false
		if werr := writeTargetsFile(a.opts.TargetsFile, nil); werr != nil {
			fmt.Fprintf(a.opts.Stderr, "leaklab: warning: %v\n", werr)
		}
	}
	return err
}

// Wait runs the services until ctx is done, then stops them (see Stop).
// When one stops on its own first, it stops the others and says which.
func (a *Supervisor) Wait(ctx context.Context) error {
	children := a.report.Services
	procs := make([]*childproc.Proc, len(children))
	byProc := make(map[*childproc.Proc]*Child, len(children))
	for i, c := range children {
		procs[i], byProc[c.proc] = c.proc, c
	}
	firstExit := childproc.FirstExit(procs)
	select {
	case <-ctx.Done():
		return a.Stop()
	case p := <-firstExit:
		// Ctrl-C in a terminal signals the whole process group, and a child
		// may exit a moment before our own handler cancels ctx: that is a
		// shutdown, not a failure.
		select {
		case <-ctx.Done():
			return a.Stop()
		case <-time.After(signalGrace):
		}
		a.Stop()
		c, err := byProc[p], p.Err()
		if err == nil {
			err = errors.New("exit status 0")
		}
		return fmt.Errorf("%s (%s) on %s stopped unexpectedly (%v), so all services were stopped", c.Name, c.Variant, c.addr, err)
	}
}

// startChildren starts every child at once and waits until each has
// printed its 'run --output json' line, which it does once it listens.
func startChildren(opts AllOptions, children []*Child) error {
	errs := make([]error, len(children))
	var wg sync.WaitGroup
	for i, c := range children {
		args := []string{opts.Exe, "run", c.Name, "--addr", c.addr, "--output", "json", "--max-leak", opts.MaxLeak}
		if c.Variant == Fixed {
			args = append(args, "--fixed")
		}
		if opts.Pyroscope != "" {
			args = append(args, "--pyroscope", opts.Pyroscope)
		}
		if opts.Quiet {
			args = append(args, "--quiet")
		}
		// The children's logs name their service.
		proc, err := childproc.Start(childproc.Spec{Argv: args, Stderr: opts.Stderr, FirstLine: true})
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

// stopChildrenWithin sends SIGTERM to every child still running and gives
// them, all together, timeout to exit; once it is up, the rest are
// killed. It reports the first unclean exit.
func stopChildrenWithin(children []*Child, timeout time.Duration) error {
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

// WriteText writes the banner: every service with its URL and PID, the
// targets file, and what to do next.
func (r AllReport) WriteText(w io.Writer) error {
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

// writeTargetsFile writes the running services as a Prometheus file_sd
// file (one group per service, labelled with service and variant), as
// the dashboards' Prometheus config reads it; atomically, so that
// Prometheus, which watches the file, never reads half of it.
func writeTargetsFile(path string, groups []filesd.Group) error {
	if groups == nil {
		groups = []filesd.Group{}
	}
	if err := filesd.WriteFile(path, groups); err != nil {
		return fmt.Errorf("writing the targets file: %w", err)
	}
	return nil
}
