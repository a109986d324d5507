package profiles

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/google/pprof/driver"
	"github.com/google/pprof/profile"
)

// WebUI is pprof's web UI on p as an http.Handler, for a server that
// already listens (the collector's): mount it with its prefix stripped,
// so that "/" is the UI's root. pprof keeps the UI until ctx ends; the
// handler answers 503 after that.
func WebUI(ctx context.Context, p *profile.Profile, log io.Writer) (http.Handler, error) {
	if log == nil {
		log = io.Discard
	}
	const source = "leaklab-diff"
	flags := &fixedFlags{
		fs:   flag.NewFlagSet("pprof", flag.ContinueOnError),
		args: []string{"-http=127.0.0.1:0", "-no_browser", "-symbolize=none", source},
	}
	flags.fs.SetOutput(log)
	ready := make(chan map[string]http.Handler, 1)
	failed := make(chan error, 1)
	go func() {
		err := driver.PProf(&driver.Options{
			Flagset: flags,
			Fetch:   fixedFetcher{p: p, source: source},
			UI:      &quietUI{w: log},
			HTTPServer: func(args *driver.HTTPServerArgs) error {
				ready <- args.Handlers
				<-ctx.Done()
				return nil
			},
		})
		if err == nil {
			err = errors.New("pprof's web UI ended before it started")
		}
		failed <- err
	}()
	select {
	case handlers := <-ready:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ctx.Err() != nil {
				http.Error(w, "this pprof view has been closed; open it again from /suspects", http.StatusServiceUnavailable)
				return
			}
			path := r.URL.Path
			if path == "" {
				path = "/"
			}
			h := handlers[path]
			if h == nil {
				http.NotFound(w, r)
				return
			}
			h.ServeHTTP(w, r)
		}), nil
	case err := <-failed:
		return nil, fmt.Errorf("pprof's web UI: %w", err)
	}
}
