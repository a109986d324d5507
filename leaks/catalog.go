// Package leaks is the sample-service catalog: intentionally leaky or slow
// Go services, each with a fixed twin that runs the same code path without
// the bug. They are exercises for people learning leak hunting and the
// realistic targets leaklab's own tests capture profiles from.
//
// Every service is served by the same scaffolding (see Start): its app
// endpoints, /debug/pprof (with godeltaprof's delta profiles), /metrics,
// /healthz, an optional Pyroscope push, and a cap on how much it may leak.
package leaks

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// pkgPath prefixes culprit names: the fully qualified functions a profile shows.
const pkgPath = "github.com/leaklab/leaklab/leaks"

// Kind says what a service wastes: the resource a correct diagnosis
// looks at first.
type Kind string

// The kinds of problem in the catalog.
const (
	KindHeap      Kind = "heap"      // retained memory grows
	KindGoroutine Kind = "goroutine" // goroutines pile up
	KindCPU       Kind = "cpu"       // CPU time per request is too high
	KindLock      Kind = "lock"      // requests wait on a lock
	KindAlloc     Kind = "alloc"     // garbage per request is too high
)

// Variant is either the leaky or the fixed twin of a service.
type Variant string

// The two variants every service has.
const (
	Leaky Variant = "leaky"
	Fixed Variant = "fixed"
)

// VariantOf returns Fixed when fixed is true, else Leaky.
func VariantOf(fixed bool) Variant {
	if fixed {
		return Fixed
	}
	return Leaky
}

// Endpoint is one app endpoint of a service and how to drive it.
type Endpoint struct {
	Method string `json:"method"`
	// Path may contain {i}, replaced by the request's sequence number so that
	// a driver can vary keys (a cache keyed by request data must see new keys).
	Path string `json:"path"`
	// BodyBytes, when non-zero, is the size of the request body to send.
	BodyBytes int `json:"body_bytes,omitempty"`
	// Doc says what the endpoint does, for the user.
	Doc string `json:"doc"`
}

// URL returns the endpoint's URL under base for request number i.
func (e Endpoint) URL(base string, i int) string {
	return strings.TrimRight(base, "/") + strings.ReplaceAll(e.Path, "{i}", strconv.Itoa(i))
}

// Request builds request number i against base.
func (e Endpoint) Request(base string, i int) (*http.Request, error) {
	method := e.Method
	if method == "" {
		method = http.MethodGet
	}
	var body *patternReader
	if e.BodyBytes > 0 {
		body = newPatternReader(e.BodyBytes)
	}
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequest(method, e.URL(base, i), body)
		req.ContentLength = int64(e.BodyBytes)
	} else {
		req, err = http.NewRequest(method, e.URL(base, i), nil)
	}
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	return req, nil
}

// Symptom is the metric on the service's own /metrics where its problem
// shows, and how it shows.
type Symptom struct {
	// Metric is a metric family on /metrics (a counter or gauge).
	Metric string `json:"metric"`
	// PerRequest is true when the symptom is the metric's increase per
	// request (allocations, lock wait, calls to a dependency) rather than
	// its growth over time (live heap, goroutines).
	PerRequest bool `json:"per_request"`
	// Leaky is the least a leaky variant shows after Drive: growth of the
	// metric over Drive.Requests requests, or its increase per request.
	Leaky float64 `json:"leaky"`
	// Fixed is the most the fixed variant may show under the same drive.
	Fixed float64 `json:"fixed"`
}

// Drive says how much traffic makes the symptom plain.
type Drive struct {
	Warmup      int `json:"warmup"`      // requests sent before measuring (fills bounded caches)
	Requests    int `json:"requests"`    // requests sent while measuring
	Concurrency int `json:"concurrency"` // requests in flight at once
}

// Service is one catalog entry.
type Service struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Summary is the symptom as a user would see it, not the cause.
	Summary string `json:"summary"`
	// Hints are progressive: each gives away a little more.
	Hints []string `json:"hints"`
	// Culprit is the fully qualified function a correct diagnosis points at:
	// the first frame in the service's own code in the profile that reveals it.
	Culprit string `json:"culprit"`
	// Profile is the pprof profile that reveals the culprit.
	Profile string `json:"profile"`
	// Retainer, for a heap leak, is what keeps the leaked memory alive: a
	// struct field as TYPE.FIELD (leaks.pageCache.entries) or a global
	// variable as PKG.VAR, as 'leaklab retainers' names them in its chains.
	Retainer string `json:"retainer,omitempty"`
	// Endpoints are the app endpoints; the first is the one to drive.
	Endpoints []Endpoint `json:"endpoints"`
	Symptom   Symptom    `json:"symptom"`
	Drive     Drive      `json:"drive"`
	// Rate is the steady load, in requests per second to the first
	// endpoint, that exercises, demos and watch tests apply: enough for the
	// symptom to show within a minute, little enough to stay under the
	// default leak cap for several minutes. DefaultRate when zero.
	Rate float64 `json:"rate"`
	// Explanation says what the bug is and how the fixed variant avoids it.
	Explanation string `json:"explanation"`

	// build makes the service's handler for one variant.
	build func(env *Env) (http.Handler, error)
}

var catalog = map[string]*Service{}

// register adds a service to the catalog; services call it from init.
func register(s *Service) {
	if _, dup := catalog[s.Name]; dup {
		panic("leaks: duplicate service " + s.Name)
	}
	if s.build == nil || len(s.Endpoints) == 0 || len(s.Hints) < 2 || s.Culprit == "" || (s.Kind == KindHeap) != (s.Retainer != "") {
		panic("leaks: incomplete catalog entry " + s.Name)
	}
	if s.Drive == (Drive{}) {
		s.Drive = defaultDrive
	}
	if s.Rate == 0 {
		s.Rate = DefaultRate
	}
	catalog[s.Name] = s
}

// DefaultRate is the steady load for a service that does not say.
const DefaultRate = 20

// defaultDrive is enough traffic for most symptoms to show.
var defaultDrive = Drive{Warmup: 200, Requests: 400, Concurrency: 8}

// All returns every service in the catalog, sorted by kind then name.
func All() []*Service {
	out := make([]*Service, 0, len(catalog))
	for _, s := range catalog {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return kindOrder(out[i].Kind) < kindOrder(out[j].Kind)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func kindOrder(k Kind) int {
	for i, o := range []Kind{KindHeap, KindGoroutine, KindCPU, KindLock, KindAlloc} {
		if k == o {
			return i
		}
	}
	return 99
}

// UnknownServiceError is returned by Lookup for a name not in the catalog.
type UnknownServiceError struct{ Name string }

func (e *UnknownServiceError) Error() string {
	return fmt.Sprintf("unknown service %q (run 'leaklab services' to list the catalog)", e.Name)
}

// Lookup finds a service by name.
func Lookup(name string) (*Service, error) {
	if s, ok := catalog[name]; ok {
		return s, nil
	}
	return nil, &UnknownServiceError{Name: name}
}

// Names returns every service name, sorted.
func Names() []string {
	names := make([]string, 0, len(catalog))
	for n := range catalog {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// patternReader yields n bytes of a repeating pattern without holding them.
type patternReader struct{ left int }

func newPatternReader(n int) *patternReader { return &patternReader{left: n} }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left)
	for i := range n {
		p[i] = 'a' + byte(i%26)
	}
	r.left -= n
	return n, nil
}
