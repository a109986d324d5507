package profiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

// Fetch defaults.
const (
	// DefaultCPUSeconds is how long a cpu profile runs when no Seconds is given.
	DefaultCPUSeconds = 10
	// DefaultTimeout is how long a fetch may take on top of the profile's
	// own duration (Seconds).
	DefaultTimeout = 30 * time.Second
	// maxRedirects stops redirect loops early.
	maxRedirects = 5
	// serviceNameTimeout bounds the best-effort lookup of the service name.
	serviceNameTimeout = 2 * time.Second
)

// FetchOptions say what to fetch and how long to wait.
type FetchOptions struct {
	// Type is one of Types; when empty it comes from a /debug/pprof/NAME
	// URL, else heap.
	Type string
	// Seconds is the duration of a cpu profile (DefaultCPUSeconds when
	// zero) or, for heap, allocs, mutex and block, asks for a delta
	// profile over that many seconds.
	Seconds int
	// NoGC skips the garbage collection the target runs before writing a
	// heap profile (net/http/pprof's ?gc=1), which makes in-use numbers
	// current.
	NoGC bool
	// Timeout bounds the whole fetch; Seconds + DefaultTimeout when zero.
	Timeout time.Duration
	// Client is the HTTP client; a client that refuses redirect loops
	// when nil.
	Client *http.Client
	Limits Limits
	// Labels are stored with the profile (for example env=staging).
	Labels map[string]string
	// NoServiceName skips asking the target for its name (/metrics, then
	// /debug/pprof/cmdline), for callers that fetch the same target
	// repeatedly and already know it.
	NoServiceName bool
	// KeepRaw keeps the body as received (usually gzipped) in the
	// Captured, for Store.SaveRaw: storing it as is saves compressing the
	// profile again.
	KeepRaw bool
}

// FetchError says fetching from a target failed; its message is one line
// naming the target and the problem.
type FetchError struct {
	URL string
	Err error
}

func (e *FetchError) Error() string { return e.URL + ": " + e.Err.Error() }
func (e *FetchError) Unwrap() error { return e.Err }

// ErrNoGoroutineLeakProfile is returned (wrapped in a FetchError) when a
// target has no goroutineleak profile.
var ErrNoGoroutineLeakProfile = errors.New("the target has no goroutineleak profile (HTTP 404): it exists only when the target is built with GOEXPERIMENT=goroutineleakprofile (Go 1.26+)")

// ProfileURL resolves target, a service base URL (http://127.0.0.1:8080)
// or a full /debug/pprof/NAME URL, into the URL to fetch, the service base
// URL, and the profile type.
func ProfileURL(target string, opts FetchOptions) (fetchURL, base, typ string, err error) {
	raw := target
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", "", "", opterr.Errorf("target", "%s: not a URL (want http://host:port or http://host:port/debug/pprof/heap)", target)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", "", opterr.Errorf("target", "%s: unsupported scheme %q (want http or https)", target, u.Scheme)
	}
	typ = opts.Type
	basePath := strings.TrimSuffix(u.Path, "/")
	if i := strings.Index(u.Path, "/debug/pprof"); i >= 0 {
		basePath = u.Path[:i]
		name := path.Base(strings.TrimSuffix(u.Path[i:], "/"))
		if name == "profile" {
			name = TypeCPU
		}
		if name != "pprof" {
			if typ != "" && typ != name {
				return "", "", "", opterr.Errorf("type", "%s: the URL asks for %s but the type asked for is %s", target, name, typ)
			}
			typ = name
		}
	}
	if typ == "" {
		typ = TypeHeap
	}
	if err := validType(typ); err != nil {
		return "", "", "", err
	}
	baseURL := url.URL{Scheme: u.Scheme, Host: u.Host, Path: basePath}
	endpoint := typ
	if typ == TypeCPU {
		endpoint = "profile"
	}
	fu := baseURL
	fu.Path = basePath + "/debug/pprof/" + endpoint
	q := u.Query()
	q.Del("debug") // only the protobuf form (debug=0) is a profile
	seconds := opts.Seconds
	if typ == TypeCPU && seconds <= 0 {
		seconds = DefaultCPUSeconds
	}
	switch typ {
	case TypeHeap:
		if !opts.NoGC && q.Get("gc") == "" {
			q.Set("gc", "1")
		}
		fallthrough
	case TypeCPU, TypeAllocs, TypeMutex, TypeBlock:
		if seconds > 0 && q.Get("seconds") == "" {
			q.Set("seconds", strconv.Itoa(seconds))
		}
	}
	fu.RawQuery = q.Encode()
	return fu.String(), baseURL.String(), typ, nil
}

// Fetch captures one profile from a live service's /debug/pprof, checks
// it is a profile within opts.Limits, and returns it with its metadata.
// It never writes anywhere; save it with Store.Save.
func Fetch(ctx context.Context, target string, opts FetchOptions) (*Captured, error) {
	fetchURL, base, typ, err := ProfileURL(target, opts)
	if err != nil {
		return nil, err
	}
	seconds := opts.Seconds
	if typ == TypeCPU && seconds <= 0 {
		seconds = DefaultCPUSeconds
	}
	timeout := fetchTimeout(seconds, opts.Timeout)
	client := opts.Client
	if client == nil {
		client = newClient()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	data, raw, err := get(ctx, client, fetchURL, opts.Limits.withDefaults(), timeout, typ, opts.KeepRaw)
	if err != nil {
		return nil, &FetchError{URL: fetchURL, Err: err}
	}
	c, err := newCapturedFromData(data, opts.Limits.withDefaults())
	if err != nil {
		return nil, &FetchError{URL: fetchURL, Err: err}
	}
	// The wire check passed; parse fully too, so that a profile the pprof
	// tools would refuse is refused here, before it reaches the store.
	if _, err := c.Profile(); err != nil {
		return nil, &FetchError{URL: fetchURL, Err: err}
	}
	c.raw = raw
	c.Target = base
	c.Type = typ
	c.Time = time.Now().UTC()
	if typ == TypeCPU || (seconds > 0 && typ != TypeGoroutine && typ != TypeGoroutineLeak) {
		c.Seconds = seconds
	}
	c.Labels = map[string]string{}
	for k, v := range opts.Labels {
		c.Labels[k] = v
	}
	if !opts.NoServiceName {
		c.Service = lookupServiceName(ctx, client, base, c.Labels)
	}
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	return c, nil
}

// fetchTimeout is the explicit timeout, else the profile's own duration
// plus DefaultTimeout, so that a 60-second cpu profile is not cut short.
func fetchTimeout(seconds int, explicit time.Duration) time.Duration {
	if explicit > 0 {
		return explicit
	}
	return time.Duration(seconds)*time.Second + DefaultTimeout
}

// FetchResult is one profile of a FetchAll.
type FetchResult struct {
	Type     string
	Captured *Captured
	Err      error
	// Skipped is true when the target does not offer this type (the
	// goroutineleak profile without GOEXPERIMENT=goroutineleakprofile).
	Skipped bool
}

// FetchAll captures every type in Types, in order. A type the target
// refuses (an HTTP error, not a profile) does not stop the others; a target
// that cannot be reached at all stops the rest, which would fail the same
// way.
func FetchAll(ctx context.Context, target string, opts FetchOptions) []FetchResult {
	var out []FetchResult
	for _, typ := range Types {
		o := opts
		o.Type = typ
		if typ != TypeCPU {
			o.Seconds = 0 // --seconds is the cpu duration here; the rest are snapshots
		}
		c, err := Fetch(ctx, target, o)
		r := FetchResult{Type: typ, Captured: c, Err: err}
		if typ == TypeGoroutineLeak && errors.Is(err, ErrNoGoroutineLeakProfile) {
			r.Skipped = true
		}
		out = append(out, r)
		var status *StatusError
		var notProfile *NotAProfileError
		if ctx.Err() != nil || (err != nil && !r.Skipped && !errors.As(err, &status) && !errors.As(err, &notProfile)) {
			break // the target is unreachable: the other types would fail the same way
		}
	}
	return out
}

// StatusError is an HTTP answer other than 200 OK.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

// TimeoutError says the target gave no complete answer within the fetch's
// timeout.
type TimeoutError struct{ After time.Duration }

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("no complete answer within %s (the target is slow or stuck; raise --timeout)", e.After)
}

func newClient() *http.Client {
	return &http.Client{
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects (a redirect loop?)", maxRedirects)
			}
			return nil
		},
	}
}

// get fetches u and returns the profile's bytes, gunzipped; with keepRaw
// also the body as received.
func get(ctx context.Context, client *http.Client, u string, l Limits, timeout time.Duration, typ string, keepRaw bool) (data, raw []byte, err error) {
	resp, err := getOK(ctx, client, u, timeout, typ)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	var rawBuf *bytes.Buffer
	if keepRaw {
		// readUncompressed reads at most MaxBytes+1 of body, so the copy
		// is bounded too.
		rawBuf = &bytes.Buffer{}
		if n := resp.ContentLength; n > 0 && n <= l.MaxBytes {
			rawBuf.Grow(int(n))
		}
		body = io.TeeReader(resp.Body, rawBuf)
	}
	data, err = readUncompressed(body, l, 0)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, describeNetError(ctx, err, timeout)
		}
		var notProfile *NotAProfileError
		if errors.As(err, &notProfile) && notProfile.Hint == "" {
			notProfile.Hint = "Content-Type " + resp.Header.Get("Content-Type")
		}
		return nil, nil, err
	}
	if rawBuf != nil {
		raw = rawBuf.Bytes()
	}
	return data, raw, nil
}

// getOK sends a GET for u and returns the response when it is 200 OK;
// otherwise an error of one line: the network's (describeNetError) or the
// status with the first line of what the target said.
func getOK(ctx context.Context, client *http.Client, u string, timeout time.Duration, typ string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, describeNetError(ctx, err, timeout)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && typ == TypeGoroutineLeak {
		return nil, ErrNoGoroutineLeakProfile
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := fmt.Sprintf("HTTP %s", resp.Status)
	if resp.StatusCode == http.StatusNotFound {
		msg += " (does the target serve net/http/pprof at /debug/pprof?)"
	}
	if line := firstLine(body); line != "" && sniff(body) != "an HTML page" {
		msg += ": " + line
	}
	return nil, &StatusError{Code: resp.StatusCode, Msg: msg}
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// describeNetError turns a transport error into one line saying what
// happened and what to do.
func describeNetError(ctx context.Context, err error, timeout time.Duration) error {
	var dnsErr *net.DNSError
	var urlErr *url.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return &TimeoutError{After: timeout}
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot resolve host %q (check the name)", dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused (is the service running, and on that port?)")
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return errors.New("the connection was closed before the profile was complete")
	case errors.As(err, &urlErr):
		return urlErr.Err
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var (
	serviceLabel = regexp.MustCompile(`\bservice="([^"\\]{1,200})"`)
	variantLabel = regexp.MustCompile(`\bvariant="([^"\\]{1,200})"`)
)

// lookupServiceName asks the target what it is called: the service label
// on its /metrics, else its command line. Best effort: failures give "".
func lookupServiceName(ctx context.Context, client *http.Client, base string, labels map[string]string) string {
	ctx, cancel := context.WithTimeout(ctx, serviceNameTimeout)
	defer cancel()
	if body := getSmall(ctx, client, base+"/metrics", 4<<20); body != nil {
		if m := serviceLabel.FindSubmatch(body); m != nil {
			if v := variantLabel.FindSubmatch(body); v != nil && labels["variant"] == "" {
				labels["variant"] = string(v[1])
			}
			return string(m[1])
		}
	}
	if body := getSmall(ctx, client, base+"/debug/pprof/cmdline", 64<<10); body != nil {
		args := strings.Split(strings.TrimRight(string(body), "\x00\n"), "\x00")
		if len(args) >= 3 && filepath.Base(args[0]) == "leaklab" && args[1] == "run" {
			return args[2]
		}
		if len(args) > 0 && args[0] != "" {
			return filepath.Base(args[0])
		}
	}
	return ""
}

func getSmall(ctx context.Context, client *http.Client, u string, limit int64) []byte {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil
	}
	return bytes.TrimSpace(body)
}
