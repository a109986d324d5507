package scale

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/leaks"
)

// TargetOptions name what each worker runs: a catalog service, or a
// command of one's own.
type TargetOptions struct {
	Service   string // a catalog service, run as 'leaklab scale worker NAME'
	Fixed     bool   // with Service: its fixed twin
	Command   string // instead of Service: run with /bin/sh -c
	Path      string // request path; default the service's first endpoint, or /
	ReadyPath string // polled until the target answers; default /healthz for a service
}

// ResolveTarget turns o into the Target each worker runs and the path to
// load. Refused options are *opterr.Error.
func ResolveTarget(o TargetOptions) (Target, string, error) {
	switch {
	case o.Service != "" && o.Command != "":
		return Target{}, "", opterr.Combination([]string{"Service", "Command"}, "give Service or Command, not both")
	case o.Service != "":
		svc, err := leaks.Lookup(o.Service)
		if err != nil {
			return Target{}, "", &opterr.Error{Option: "Service", Err: err}
		}
		exe, err := os.Executable()
		if err != nil {
			return Target{}, "", fmt.Errorf("finding the leaklab binary to run workers: %w", err)
		}
		argv := []string{exe, "scale", "worker", svc.Name}
		if o.Fixed {
			argv = append(argv, "--fixed")
		}
		path := o.Path
		if path == "" {
			path = svc.Endpoints[0].Path
			if m := svc.Endpoints[0].Method; m != "" && m != "GET" {
				return Target{}, "", opterr.Errorf("Path", "%s's endpoint is %s %s; scale sends GET, so pick a GET path with Path", svc.Name, m, path)
			}
		}
		ready := o.ReadyPath
		if ready == "" {
			ready = "/healthz"
		}
		name := fmt.Sprintf("%s (%s)", svc.Name, leaks.VariantOf(o.Fixed))
		return Target{Name: name, Argv: argv, ReadyPath: ready, ReportsCounts: true}, path, nil
	case o.Command != "":
		if o.Fixed {
			return Target{}, "", opterr.Combination([]string{"Fixed", "Service", "Command"}, "Fixed goes with Service, not Command")
		}
		path := o.Path
		if path == "" {
			path = "/"
		}
		// exec, so the command itself is the worker: it gets the
		// Pdeathsig, and signals reach it rather than a shell.
		return Target{Name: o.Command, Argv: []string{"/bin/sh", "-c", "exec " + o.Command}, ReadyPath: o.ReadyPath}, path, nil
	}
	return Target{}, "", opterr.Combination([]string{"Service", "Command"}, "give the target: Service NAME (see 'leaklab services') or Command COMMAND")
}

// ServeService is a 'leaklab scale --service' worker: the catalog service
// name served on the listener the master arranged (see NewWorker), until
// ctx is done or the master closes it. Its warnings go to stderr.
func ServeService(ctx context.Context, name string, fixed bool, stderr io.Writer) error {
	svc, err := leaks.Lookup(name)
	if err != nil {
		return &opterr.Error{Option: "Service", Err: err}
	}
	w, err := NewWorker()
	if err != nil {
		return err
	}
	defer w.Close()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := leaks.Start(ctx, svc, leaks.Options{Listener: w.Listener(), Fixed: fixed, Middleware: w.Middleware, Logger: logger})
	if err != nil {
		return err
	}
	go w.ServeStats()
	err = srv.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); err == nil {
		err = serr
	}
	if err != nil && strings.Contains(err.Error(), "use of closed") {
		err = nil
	}
	return err
}
