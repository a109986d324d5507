package leaks

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

func init() {
	register(&Service{
		Name:    "global-mutex",
		Kind:    KindLock,
		Summary: "Throughput is stuck near 1,000 requests per second however many cores or connections you add, and latency grows with every extra client while the CPU idles.",
		Hints: []string{
			"The CPU is idle, so look at where requests wait: the mutex profile (and go_sync_mutex_wait_total_seconds_total) points at one lock.",
			"The lock that protects the rates map is held across the call to the upstream rate provider, so only one request at a time can be talking to it.",
			"Hold a lock for the shared data only: fetch outside the critical section, then lock to store the result.",
		},
		Culprit:   pkgPath + ".(*rateService).lookup",
		Profile:   "mutex",
		Endpoints: []Endpoint{{Method: "GET", Path: "/rate?from=EUR&to=USD&req={i}", Doc: "converts currencies with a rate fetched from the upstream provider"}},
		Symptom:   Symptom{Metric: "go_sync_mutex_wait_total_seconds_total", PerRequest: true, Leaky: 0.001, Fixed: 0.0002},
		Explanation: "One sync.Mutex guards the rate table, and lookup holds it for the whole upstream call (1 ms). Every " +
			"request queues behind the one in flight, so the service serves one request per millisecond at best. " +
			"The fixed variant calls the provider without the lock and locks only to update the map.",
		build: func(env *Env) (http.Handler, error) {
			s := &rateService{env: env, rates: map[string]float64{}, upstreamLatency: time.Millisecond}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /rate", s.serveRate)
			return mux, nil
		},
	})
}

type rateService struct {
	env             *Env
	mu              sync.Mutex
	rates           map[string]float64
	upstreamLatency time.Duration
}

func (s *rateService) serveRate(w http.ResponseWriter, r *http.Request) {
	pair := r.URL.Query().Get("from") + "/" + r.URL.Query().Get("to")
	fmt.Fprintf(w, "%s %.4f\n", pair, s.lookup(pair))
}

// fetchRate stands for the network call to the rate provider.
func (s *rateService) fetchRate(pair string) float64 {
	time.Sleep(s.upstreamLatency)
	return 1 + float64(len(pair))/100
}

// lookup returns a fresh rate for pair and records it.
func (s *rateService) lookup(pair string) float64 {
	if s.env.Fixed {
		rate := s.fetchRate(pair)
		s.mu.Lock()
		s.rates[pair] = rate
		s.mu.Unlock()
		return rate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rate := s.fetchRate(pair)
	s.rates[pair] = rate
	return rate
}
