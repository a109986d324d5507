package profiles

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/pprof/driver"
	"github.com/google/pprof/profile"
)

// WebOptions configure ServeWeb.
type WebOptions struct {
	// Addr is host:port to listen on; a bare :port or port listens on
	// loopback only, so the UI is never exposed to the network by accident.
	Addr string
	// Log receives pprof's own messages; discarded when nil.
	Log io.Writer
	// Ready is called with the UI's URL once it listens.
	Ready func(url string)
}

// ServeWeb serves pprof's web UI (graph, flame graph, top, source) on p
// through github.com/google/pprof/driver until ctx ends.
func ServeWeb(ctx context.Context, p *profile.Profile, opts WebOptions) error {
	addr := opts.Addr
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s for the web UI: %w", addr, err)
	}
	defer ln.Close()
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	const source = "leaklab-diff"
	flags := &fixedFlags{
		fs:   flag.NewFlagSet("pprof", flag.ContinueOnError),
		args: []string{"-http=" + ln.Addr().String(), "-no_browser", "-symbolize=none", source},
	}
	flags.fs.SetOutput(logw)
	serve := func(args *driver.HTTPServerArgs) error {
		// pprof's handlers use relative links and expect to sit under
		// /ui/, with exact paths ("/" redirects to "flamegraph").
		ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := args.Handlers[r.URL.Path]
			if h == nil {
				http.NotFound(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
		mux := http.NewServeMux()
		mux.Handle("/ui/", http.StripPrefix("/ui", ui))
		mux.Handle("/{$}", http.RedirectHandler("/ui/", http.StatusTemporaryRedirect))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(shut)
		}()
		if opts.Ready != nil {
			opts.Ready("http://" + ln.Addr().String() + "/ui/")
		}
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	return driver.PProf(&driver.Options{
		Flagset:    flags,
		Fetch:      fixedFetcher{p: p, source: source},
		UI:         &quietUI{w: logw},
		HTTPServer: serve,
	})
}

// fixedFetcher hands pprof the profile already in memory.
type fixedFetcher struct {
	p      *profile.Profile
	source string
}

func (f fixedFetcher) Fetch(src string, _, _ time.Duration) (*profile.Profile, string, error) {
	if src != f.source {
		return nil, "", fmt.Errorf("unknown source %q", src)
	}
	return f.p.Copy(), src, nil
}

// fixedFlags is a driver.FlagSet over a fixed argument list, so pprof
// never looks at leaklab's own command line.
type fixedFlags struct {
	fs    *flag.FlagSet
	args  []string
	usage []string
}

func (f *fixedFlags) Bool(n string, d bool, u string) *bool          { return f.fs.Bool(n, d, u) }
func (f *fixedFlags) Int(n string, d int, u string) *int             { return f.fs.Int(n, d, u) }
func (f *fixedFlags) Float64(n string, d float64, u string) *float64 { return f.fs.Float64(n, d, u) }
func (f *fixedFlags) String(n, d, u string) *string                  { return f.fs.String(n, d, u) }
func (f *fixedFlags) StringList(n, d, u string) *[]*string {
	return &[]*string{f.fs.String(n, d, u)}
}
func (f *fixedFlags) ExtraUsage() string      { return strings.Join(f.usage, "\n") }
func (f *fixedFlags) AddExtraUsage(eu string) { f.usage = append(f.usage, eu) }
func (f *fixedFlags) Parse(usage func()) []string {
	if err := f.fs.Parse(f.args); err != nil {
		usage()
		return nil
	}
	return f.fs.Args()
}

// quietUI sends pprof's messages to a writer and never reads a terminal.
type quietUI struct{ w io.Writer }

func (u *quietUI) ReadLine(string) (string, error)     { return "", io.EOF }
func (u *quietUI) Print(args ...any)                   { fmt.Fprintln(u.w, args...) }
func (u *quietUI) PrintErr(args ...any)                { fmt.Fprintln(u.w, args...) }
func (u *quietUI) IsTerminal() bool                    { return false }
func (u *quietUI) WantBrowser() bool                   { return false }
func (u *quietUI) SetAutoComplete(func(string) string) {}
