package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
)

// Forwarding limits: a bounded queue (a Pyroscope that is down must not
// make the collector grow), a few senders, a short retry.
const (
	forwardQueue    = 256
	forwardWorkers  = 4
	forwardTimeout  = 15 * time.Second
	forwardAttempts = 3
)

// forwardItem is one profile as the ingest API carries it.
type forwardItem struct {
	query   url.Values // name, from, until, spyName, sampleRate, units, aggregationType
	profile []byte     // the pprof profile (gzipped or not, as the source gave it)
	config  []byte     // sample_type_config JSON, or nil
}

// sampleType is one entry of the ingest API's sample_type_config.
type sampleType struct {
	Units       string `json:"units,omitempty"`
	Aggregation string `json:"aggregation,omitempty"`
	DisplayName string `json:"display-name,omitempty"`
	Sampled     bool   `json:"sampled,omitempty"`
	Cumulative  bool   `json:"cumulative,omitempty"`
}

// pulledSampleTypes says how to read the sample types of profiles pulled
// from /debug/pprof. Unlike pyroscope-go's godeltaprof deltas, a pulled
// heap profile's alloc_* values count since the process started, hence
// cumulative.
var pulledSampleTypes = map[string]map[string]sampleType{
	profiles.TypeHeap: {
		"alloc_objects": {Units: "objects", Cumulative: true},
		"alloc_space":   {Units: "bytes", Cumulative: true},
		"inuse_objects": {Units: "objects", Aggregation: "average"},
		"inuse_space":   {Units: "bytes", Aggregation: "average"},
	},
	profiles.TypeAllocs: {
		"alloc_objects": {Units: "objects", Cumulative: true},
		"alloc_space":   {Units: "bytes", Cumulative: true},
		"inuse_objects": {Units: "objects", Aggregation: "average"},
		"inuse_space":   {Units: "bytes", Aggregation: "average"},
	},
	profiles.TypeGoroutine: {
		"goroutine": {DisplayName: "goroutines", Units: "goroutines", Aggregation: "average"},
	},
	profiles.TypeGoroutineLeak: {
		"goroutineleak": {DisplayName: "goroutine_leak", Units: "goroutines", Aggregation: "average"},
	},
	profiles.TypeMutex: {
		"contentions": {DisplayName: "mutex_count", Units: "lock_samples", Cumulative: true},
		"delay":       {DisplayName: "mutex_duration", Units: "lock_nanoseconds", Cumulative: true},
	},
	profiles.TypeBlock: {
		"contentions": {DisplayName: "block_count", Units: "lock_samples", Cumulative: true},
		"delay":       {DisplayName: "block_duration", Units: "lock_nanoseconds", Cumulative: true},
	},
}

// forwardItemFor turns a pulled profile into an ingest request: the
// application is the service's name (else the job, else the host), the
// labels are the target's. The profile goes as fetched when Fetch kept
// the bytes (the ingest API takes pprof gzipped or not), else gzipped
// afresh.
func forwardItemFor(cp *profiles.Captured, every time.Duration) (*forwardItem, error) {
	body := cp.Raw()
	if body == nil {
		var buf bytes.Buffer
		if _, err := cp.WriteTo(&buf); err != nil {
			return nil, err
		}
		body = buf.Bytes()
	}
	name := appName{App: cp.Service, Labels: map[string]string{}}
	for k, v := range cp.Labels {
		if k != LabelCollected {
			name.Labels[k] = v
		}
	}
	if name.App == "" {
		name.App = cp.Labels["job"]
	}
	if name.App == "" {
		if u, err := url.Parse(cp.Target); err == nil {
			name.App = u.Host
		}
	}
	name.App = sanitizeAppName(name.App)
	from := cp.Time.Add(-every)
	if cp.Seconds > 0 {
		from = cp.Time.Add(-time.Duration(cp.Seconds) * time.Second)
	}
	q := url.Values{}
	q.Set("name", name.String())
	q.Set("from", strconv.FormatInt(from.UnixNano(), 10))
	q.Set("until", strconv.FormatInt(cp.Time.UnixNano(), 10))
	q.Set("spyName", "leaklab")
	q.Set("format", "pprof")
	item := &forwardItem{query: q, profile: body}
	if st, ok := pulledSampleTypes[cp.Type]; ok {
		cfg, err := json.Marshal(st)
		if err != nil {
			return nil, err
		}
		item.config = cfg
	}
	return item, nil
}

// ForwardAuth identifies the collector to the forward target, as a
// multi-tenant Pyroscope (or a gateway in front of one, such as Grafana
// Cloud's) expects.
type ForwardAuth struct {
	// Tenant is sent as X-Scope-OrgID, the header Pyroscope's
	// multi-tenant mode reads; empty sends none.
	Tenant string
	// User and Password are sent as HTTP basic auth when User is set.
	// The password is never logged.
	User     string
	Password string
}

// TenantHeader is the header that names the tenant to Pyroscope.
const TenantHeader = "X-Scope-OrgID"

// forwarder sends profiles to a Pyroscope's /ingest from a bounded queue.
type forwarder struct {
	ingest string
	auth   ForwardAuth
	client *http.Client
	queue  chan *forwardItem
	m      *metrics
	log    *slog.Logger
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc

	mu                  sync.Mutex
	ok, failed, dropped int
	warned              bool
	closed              bool
}

// forwardURL parses the forward target's base URL (Options.Forward).
func forwardURL(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, opterr.Errorf("Forward", "forward %q: want the Pyroscope base URL, e.g. http://127.0.0.1:4040", base)
	}
	if u.User != nil {
		// It would end up in logs and error messages, and on the command
		// line where anyone can read it in ps.
		return nil, opterr.Combination([]string{"Forward", "User"}, "forward %s: leave credentials out of the URL; give the User separately, and the password from a file or the environment", u.Redacted())
	}
	return u, nil
}

func newForwarder(base string, auth ForwardAuth, m *metrics, log *slog.Logger) (*forwarder, error) {
	u, err := forwardURL(base)
	if err != nil {
		return nil, err
	}
	if auth.User == "" && auth.Password != "" {
		return nil, opterr.Errorf("ForwardAuth", "a forward password needs a user (ForwardAuth.User)")
	}
	if auth.User != "" && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		log.Warn("forwarding with basic auth over plain http: the password crosses the network readable; use https", "forward", u.String())
	}
	u.Path = path.Join("/", u.Path, "ingest")
	u.RawQuery = ""
	f := &forwarder{
		ingest: u.String(),
		auth:   auth,
		client: &http.Client{Timeout: forwardTimeout},
		queue:  make(chan *forwardItem, forwardQueue),
		m:      m,
		log:    log,
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f, nil
}

func (f *forwarder) start() {
	for range forwardWorkers {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for item := range f.queue {
				f.send(item)
			}
		}()
	}
}

// enqueue never blocks: when Pyroscope cannot keep up the profile is
// dropped and counted, rather than holding up captures or pushes.
func (f *forwarder) enqueue(item *forwardItem) {
	// The send happens under the lock so that stop cannot close the queue
	// in between; it never blocks.
	f.mu.Lock()
	queued := false
	if !f.closed { // else: a push still being read when the grace ended
		select {
		case f.queue <- item:
			queued = true
		default:
		}
	}
	f.mu.Unlock()
	switch {
	case queued:
	case f.isClosed():
		f.count(&f.dropped, "dropped")
	default:
		f.count(&f.dropped, "dropped")
		f.mu.Lock()
		warn := !f.warned
		f.warned = true
		f.mu.Unlock()
		if warn {
			f.log.Warn("forward queue full; dropping profiles until Pyroscope catches up", "forward", f.ingest)
		}
	}
}

// stop sends what is queued until ctx ends, then drops the rest.
func (f *forwarder) stop(ctx context.Context) {
	f.mu.Lock()
	f.closed = true
	close(f.queue)
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		f.cancel()
		<-done
	}
	f.cancel()
}

func (f *forwarder) send(item *forwardItem) {
	if f.ctx.Err() != nil {
		f.count(&f.dropped, "dropped")
		return
	}
	var err error
	for attempt := 1; attempt <= forwardAttempts; attempt++ {
		var retry bool
		retry, err = f.post(item)
		if err == nil {
			f.count(&f.ok, "ok")
			return
		}
		if !retry || attempt == forwardAttempts {
			break
		}
		select {
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		case <-f.ctx.Done():
			f.count(&f.dropped, "dropped")
			return
		}
	}
	f.count(&f.failed, "failed")
	f.log.Warn("forwarding a profile failed", "forward", f.ingest, "name", item.query.Get("name"), "err", err)
}

// post sends one item; retry says whether trying again may help.
func (f *forwarder) post(item *forwardItem) (retry bool, err error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	pw, err := mw.CreateFormFile("profile", "profile.pprof")
	if err != nil {
		return false, err
	}
	if _, err := pw.Write(item.profile); err != nil {
		return false, err
	}
	if item.config != nil {
		cw, err := mw.CreateFormFile("sample_type_config", "sample_type_config.json")
		if err != nil {
			return false, err
		}
		if _, err := cw.Write(item.config); err != nil {
			return false, err
		}
	}
	if err := mw.Close(); err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(f.ctx, http.MethodPost, f.ingest+"?"+item.query.Encode(), &body)
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if f.auth.Tenant != "" {
		req.Header.Set(TenantHeader, f.auth.Tenant)
	}
	if f.auth.User != "" {
		req.SetBasicAuth(f.auth.User, f.auth.Password)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return f.ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("HTTP %s: %s", resp.Status, bytes.TrimSpace(msg))
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, err
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (f *forwarder) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *forwarder) count(n *int, result string) {
	f.mu.Lock()
	*n++
	f.mu.Unlock()
	f.m.forwarded.WithLabelValues(result).Inc()
}

func (f *forwarder) counts() (ok, failed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ok, f.failed + f.dropped
}
