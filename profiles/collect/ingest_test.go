package collect

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
)

// TestPushFromPyroscopeGo points a real sample service's pyroscope-go
// push at the collector and checks the profiles land in the store under
// the service's name and variant.
func TestPushFromPyroscopeGo(t *testing.T) {
	t.Parallel()
	r := startCollector(t, Options{}, true)
	startService(t, "abandoned-worker", false, leaks.Options{Pyroscope: r.url, PyroscopeUploadRate: time.Second})

	target := PushTargetPrefix + "leaklab.abandoned-worker"
	want := []string{profiles.TypeHeap, profiles.TypeGoroutine, profiles.TypeCPU, profiles.TypeMutex, profiles.TypeBlock}
	testbin.WaitFor(t, 60*time.Second, "pushed heap, goroutine, cpu, mutex and block profiles", func() bool {
		for _, typ := range want {
			if len(list(t, r.store, profiles.Filter{Target: target, Type: typ})) == 0 {
				return false
			}
		}
		return true
	})
	sum := r.stop(t)
	for _, m := range list(t, r.store, profiles.Filter{Target: target}) {
		if m.Service != "abandoned-worker" || m.Labels["variant"] != "leaky" || m.Labels["service"] != "abandoned-worker" ||
			m.Labels[LabelCollected] != "push" || m.Labels["app"] != "leaklab.abandoned-worker" {
			t.Errorf("pushed profile stored as %+v: want service abandoned-worker, variant leaky, collected=push", m)
		}
		// What detection tells processes apart by, under names that are
		// not the series' labels (pushSeries).
		if m.Labels[labelSession] == "" {
			t.Errorf("pushed profile stored without pyroscope-go's session id: %v", m.Labels)
		}
		if from, err := time.Parse(time.RFC3339Nano, m.Labels[labelPushFrom]); err != nil || !from.Before(m.Time) {
			t.Errorf("pushed profile stored with %s=%q, time %s: want the start of the push's period", labelPushFrom, m.Labels[labelPushFrom], m.Time)
		}
		if delta := m.Labels[labelDeltaAllocs] == "true"; delta != (m.Type == profiles.TypeHeap) {
			t.Errorf("%s profile stored with %s=%q: godeltaprof's heap profiles, and only they, count allocations per push", m.Type, labelDeltaAllocs, m.Labels[labelDeltaAllocs])
		}
		if want := "push://leaklab.abandoned-worker{service=abandoned-worker,variant=leaky}"; pushSeries(m) != want {
			t.Errorf("%s profile judged as %q, want %q", m.Type, pushSeries(m), want)
		}
		if time.Since(m.Time) > time.Minute || time.Until(m.Time) > time.Minute {
			t.Errorf("pushed profile time %s is not the push's until time", m.Time)
		}
		c, err := r.store.Load(m.ID, profiles.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Profile(); err != nil {
			t.Errorf("stored push %s does not parse: %v", m.ID, err)
		}
	}
	if sum.Pushes < len(want) || sum.PushesRejected != 0 {
		t.Errorf("summary %+v: want >= %d pushes and none rejected", sum, len(want))
	}
}

// pushRequest builds a push as pyroscope-go sends it.
type pushRequest struct {
	method      string
	query       string
	contentType string // overrides the multipart one when set
	body        []byte // overrides the multipart body when set
	profile     []byte
	config      string
	noProfile   bool
}

func (p pushRequest) send(t *testing.T, base string) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if !p.noProfile {
		w, _ := mw.CreateFormFile("profile", "profile.pprof")
		w.Write(p.profile)
	}
	if p.config != "" {
		w, _ := mw.CreateFormFile("sample_type_config", "sample_type_config.json")
		io.WriteString(w, p.config)
	}
	mw.Close()
	ct := mw.FormDataContentType()
	if p.contentType != "" {
		ct = p.contentType
	}
	if p.body != nil {
		body = *bytes.NewBuffer(p.body)
	}
	method := p.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, base+"/ingest?"+p.query, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(msg))
}

func realHeapProfile(t *testing.T) []byte {
	t.Helper()
	srv := startService(t, "abandoned-worker", true, leaks.Options{})
	return []byte(get(t, srv.URL()+"/debug/pprof/heap"))
}

// brokenSample returns the profile with one sample pointing at a location
// the profile does not hold: its tables are sound, so profiles.Read takes
// it, but the pprof tools refuse it.
func brokenSample(t *testing.T, gz []byte) []byte {
	t.Helper()
	p, err := profile.ParseData(gz)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) == 0 {
		t.Fatal("the profile has no samples")
	}
	var maxID uint64
	for _, l := range p.Location {
		maxID = max(maxID, l.ID)
	}
	s := p.Sample[0]
	s.Location = append(s.Location, &profile.Location{ID: maxID + 1})
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := profiles.Read(bytes.NewReader(buf.Bytes()), profiles.Limits{}); err != nil {
		t.Fatalf("profiles.Read refuses the broken sample already (%v): the case tests nothing", err)
	}
	return buf.Bytes()
}

// TestPushRejectsBadInput sends malformed pushes: each gets a 4xx with a
// message saying what is wrong, and nothing reaches the store.
func TestPushRejectsBadInput(t *testing.T) {
	t.Parallel()
	heap := realHeapProfile(t)
	random := make([]byte, 2<<20)
	rand.Read(random)
	name := "name=" + url.QueryEscape("app{service=x,variant=y}")
	for _, tc := range []struct {
		name string
		req  pushRequest
		code int
		msg  string
	}{
		{"GET", pushRequest{method: http.MethodGet, query: name, profile: heap}, 405, "takes POST"},
		{"no name", pushRequest{profile: heap}, 400, "missing the name query parameter"},
		{"unclosed labels", pushRequest{query: "name=" + url.QueryEscape("app{service=x"), profile: heap}, 400, "not closed"},
		{"bad label name", pushRequest{query: "name=" + url.QueryEscape("app{1x=y}"), profile: heap}, 400, "label name"},
		{"bad time", pushRequest{query: name + "&from=yesterday", profile: heap}, 400, "not a Unix time"},
		{"other format", pushRequest{query: name + "&format=jfr", profile: heap}, 415, "pprof profiles only"},
		{"raw body", pushRequest{query: name, contentType: "application/octet-stream", body: heap}, 415, "multipart/form-data"},
		{"broken multipart", pushRequest{query: name, contentType: "multipart/form-data; boundary=xyz", body: []byte("--xyz\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\nabc")}, 400, "not valid multipart"},
		{"no profile part", pushRequest{query: name, noProfile: true, config: `{}`}, 400, "no part named profile"},
		{"empty profile", pushRequest{query: name, profile: []byte{}}, 400, "not a pprof profile (empty)"},
		{"HTML", pushRequest{query: name, profile: []byte("<html><body>hi</body></html>")}, 400, "an HTML page"},
		{"random bytes", pushRequest{query: name, profile: random[:4096]}, 400, "not a pprof profile"},
		{"truncated gzip", pushRequest{query: name, profile: heap[:len(heap)/2]}, 400, "truncated gzip"},
		{"oversized body", pushRequest{query: name, profile: random}, 413, "larger than 1048576 bytes"},
		{"gzip bomb", pushRequest{query: name, profile: testbin.GzipBomb(100 << 20)}, 413, "gzip bomb"},
		{"bad sample_type_config", pushRequest{query: name, profile: heap, config: `[1,2`}, 400, "sample_type_config"},
		{"sample at a missing location", pushRequest{query: name, profile: brokenSample(t, heap)}, 400, "sample has nil location"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startCollector(t, Options{MaxPushBytes: 1 << 20}, true)
			code, msg := tc.req.send(t, r.url)
			if code != tc.code || !strings.Contains(msg, tc.msg) || strings.Contains(msg, "\n") {
				t.Errorf("status %d %q, want %d and one line containing %q", code, msg, tc.code, tc.msg)
			}
			sum := r.stop(t)
			if files := testbin.DirNames(t, r.store.Dir()); len(files) != 0 {
				t.Errorf("a rejected push left %v in the store", files)
			}
			if sum.PushesRejected != 1 || sum.Pushes != 0 {
				t.Errorf("summary %+v: want one rejected push", sum)
			}
		})
	}
	// And the same collector still takes a good push afterwards.
	r := startCollector(t, Options{MaxPushBytes: 1 << 20}, true)
	if code, msg := (pushRequest{query: name, profile: testbin.GzipBomb(100 << 20)}).send(t, r.url); code != 413 {
		t.Fatalf("gzip bomb: %d %s", code, msg)
	}
	if code, msg := (pushRequest{query: name, profile: heap}).send(t, r.url); code != 200 {
		t.Fatalf("good push after a bad one: %d %s", code, msg)
	}
	if ms := list(t, r.store, profiles.Filter{}); len(ms) != 1 || ms[0].Service != "x" || ms[0].Labels["variant"] != "y" || ms[0].Type != profiles.TypeHeap {
		t.Errorf("stored %+v, want one heap profile of service x, variant y", ms)
	}
}

func TestParseAppName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		app    string
		labels map[string]string
		err    string
	}{
		{"leaklab.cache", "leaklab.cache", map[string]string{}, ""},
		{"leaklab.cache{}", "leaklab.cache", map[string]string{}, ""},
		{"app{service=x,variant=y}", "app", map[string]string{"service": "x", "variant": "y"}, ""},
		{"app{__session_id__=abc,process.runtime.name=go}", "app", map[string]string{"__session_id__": "abc", "process.runtime.name": "go"}, ""},
		{"app{ a = b }", "app", map[string]string{"a": "b"}, ""},
		{"", "", nil, "missing"},
		{"{a=b}", "", nil, "no application name"},
		{"app{a=b", "", nil, "not closed"},
		{"app{a}", "", nil, "not label=value"},
		{"app{9a=b}", "", nil, "not label=value"},
		{"app{a=b{c}", "", nil, "brace"},
		{strings.Repeat("a", maxNameLen+1), "", nil, "longer than"},
	} {
		n, err := parseAppName(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseAppName(%q) = %v, want error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || n.App != tc.app || fmt.Sprint(n.Labels) != fmt.Sprint(tc.labels) {
			t.Errorf("parseAppName(%q) = %+v, %v; want %s %v", tc.in, n, err, tc.app, tc.labels)
		}
		// What String writes, parseAppName reads back.
		if back, err := parseAppName(n.String()); err != nil || fmt.Sprint(back) != fmt.Sprint(n) {
			t.Errorf("round trip of %q: %+v, %v", n.String(), back, err)
		}
	}
}

// ingestChecker is a stand-in Pyroscope (which cannot run here) that
// checks every request against the ingest wire format pyroscope-go
// speaks, and records what it got.
type ingestChecker struct {
	t  *testing.T
	mu sync.Mutex
	// got maps the application name to the profiles' sample types.
	got     map[string][][]string
	labels  map[string]map[string]string
	bodies  [][]byte
	configs []map[string]sampleType
}

func (c *ingestChecker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(format string, args ...any) {
		c.t.Errorf("forwarded request: "+format, args...)
		http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/ingest" {
		fail("%s %s, want POST /ingest", r.Method, r.URL.Path)
		return
	}
	q := r.URL.Query()
	name, err := parseAppName(q.Get("name"))
	if err != nil {
		fail("name: %v", err)
		return
	}
	from, err1 := strconv.ParseInt(q.Get("from"), 10, 64)
	until, err2 := strconv.ParseInt(q.Get("until"), 10, 64)
	if err1 != nil || err2 != nil || from > until || until < time.Now().Add(-time.Hour).UnixNano() {
		fail("from=%q until=%q: want Unix nanoseconds, from <= until, recent", q.Get("from"), q.Get("until"))
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		fail("not multipart: %v", err)
		return
	}
	var prof *profile.Profile
	var raw []byte
	config := map[string]sampleType{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail("multipart: %v", err)
			return
		}
		data, _ := io.ReadAll(part)
		switch part.FormName() {
		case "profile":
			if part.FileName() != "profile.pprof" {
				fail("profile part file name %q", part.FileName())
			}
			raw = data
			if prof, err = profile.ParseData(data); err != nil {
				fail("profile part is not pprof: %v", err)
				return
			}
		case "sample_type_config":
			if err := json.Unmarshal(data, &config); err != nil {
				fail("sample_type_config: %v", err)
				return
			}
		default:
			fail("unexpected part %q", part.FormName())
		}
	}
	if prof == nil {
		fail("no profile part")
		return
	}
	var types []string
	for _, st := range prof.SampleType {
		types = append(types, st.Type)
		if cfg, ok := config[st.Type]; len(config) > 0 && (!ok || cfg.Units == "") {
			fail("sample_type_config has no units for %s: %v", st.Type, config)
			return
		}
	}
	c.mu.Lock()
	c.got[name.App] = append(c.got[name.App], types)
	c.labels[name.App] = name.Labels
	c.bodies = append(c.bodies, raw)
	c.configs = append(c.configs, config)
	c.mu.Unlock()
}

func (c *ingestChecker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bodies)
}

// heapConfig is the sample_type_config pyroscope-go sends with heap
// profiles.
const heapConfig = `{"alloc_objects":{"units":"objects"},"alloc_space":{"units":"bytes"},"inuse_objects":{"units":"objects","aggregation":"average"},"inuse_space":{"units":"bytes","aggregation":"average"}}`

// TestForward pulls from a real service and takes a push, with the store
// off, and forwards both to a server checking the ingest wire format: the
// pulled profile under the service's name with its target labels, the
// push byte for byte.
func TestForward(t *testing.T) {
	t.Parallel()
	svc := startService(t, "abandoned-worker", true, leaks.Options{})
	checker := &ingestChecker{t: t, got: map[string][][]string{}, labels: map[string]map[string]string{}}
	pyro := httptest.NewServer(checker)
	defer pyro.Close()

	r := startCollector(t, Options{
		Discover: StaticTargets{{URL: svc.URL(), Labels: map[string]string{"job": "demo"}}},
		Every:    200 * time.Millisecond, Timeout: captureTimeout, Forward: pyro.URL,
	}, true)
	heap := realHeapProfile(t)
	push := "name=" + url.QueryEscape("pushed.app{service=pushed,variant=fixed}") + fmt.Sprintf("&from=%d&until=%d&spyName=gospy", time.Now().Add(-10*time.Second).UnixNano(), time.Now().UnixNano())
	if code, msg := (pushRequest{query: push, profile: heap, config: heapConfig}).send(t, r.url); code != 200 {
		t.Fatalf("push: %d %s", code, msg)
	}
	testbin.WaitFor(t, 30*time.Second, "forwarded heap and goroutine profiles and the push", func() bool {
		checker.mu.Lock()
		defer checker.mu.Unlock()
		return len(checker.got["abandoned-worker"]) >= 2 && len(checker.got["pushed.app"]) == 1
	})
	sum := r.stop(t)
	if r.store != nil {
		t.Fatal("the store should be off in this test")
	}
	checker.mu.Lock()
	defer checker.mu.Unlock()
	kinds := map[string]bool{}
	for _, types := range checker.got["abandoned-worker"] {
		kinds[strings.Join(types, ",")] = true
	}
	if !kinds["alloc_objects,alloc_space,inuse_objects,inuse_space"] || !kinds["goroutine"] {
		t.Errorf("forwarded pulled profiles have sample types %v, want heap and goroutine", kinds)
	}
	if l := checker.labels["abandoned-worker"]; l["job"] != "demo" || l["variant"] != "fixed" || l[LabelCollected] != "" {
		t.Errorf("forwarded labels %v: want the target's job and variant, not the store-only collected label", l)
	}
	pushed := false
	for _, b := range checker.bodies {
		pushed = pushed || bytes.Equal(b, heap)
	}
	if !pushed {
		t.Error("the push was not forwarded byte for byte")
	}
	if sum.Forwarded < 3 || sum.ForwardFailed != 0 {
		t.Errorf("summary %+v: want >= 3 forwarded, none failed", sum)
	}
}

// TestForwardToAnotherCollector chains two collectors: what the first
// pulls, the second receives on its ingest API and stores, labels intact.
// leaklab's own ingest is a second, independent reader of the wire format.
func TestForwardToAnotherCollector(t *testing.T) {
	t.Parallel()
	svc := startService(t, "abandoned-worker", false, leaks.Options{})
	downstream := startCollector(t, Options{}, true)
	startCollector(t, Options{
		Discover: StaticTargets{{URL: svc.URL(), Labels: map[string]string{"job": "edge"}}},
		Every:    200 * time.Millisecond, Timeout: captureTimeout, Forward: downstream.url,
	}, false)
	target := PushTargetPrefix + "abandoned-worker"
	testbin.WaitFor(t, 90*time.Second, "the downstream collector to store forwarded heap and goroutine profiles", func() bool {
		return len(list(t, downstream.store, profiles.Filter{Target: target, Type: profiles.TypeHeap})) > 0 &&
			len(list(t, downstream.store, profiles.Filter{Target: target, Type: profiles.TypeGoroutine})) > 0
	})
	for _, m := range list(t, downstream.store, profiles.Filter{Target: target}) {
		if m.Service != "abandoned-worker" || m.Labels["job"] != "edge" || m.Labels["variant"] != "leaky" {
			t.Errorf("downstream stored %+v: want service abandoned-worker, job=edge, variant=leaky", m)
		}
	}
}

// TestForwardFailureDoesNotStopCollection forwards to a Pyroscope that
// answers 503: forwards are retried, then counted as failed, and the
// local store keeps filling meanwhile.
func TestForwardFailureDoesNotStopCollection(t *testing.T) {
	t.Parallel()
	svc := startService(t, "abandoned-worker", true, leaks.Options{})
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "ingester unavailable", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	st, err := profiles.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := startCollector(t, Options{
		Discover: StaticTargets{{URL: svc.URL()}}, Every: 200 * time.Millisecond, Timeout: captureTimeout, Store: st, Forward: down.URL,
	}, false)
	testbin.WaitFor(t, 60*time.Second, "a failed forward while the store fills", func() bool {
		return r.c.Summary().ForwardFailed >= 1 && len(list(t, st, profiles.Filter{})) >= 4
	})
	r.stop(t)
}
