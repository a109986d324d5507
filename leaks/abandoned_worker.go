package leaks

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

func init() {
	register(&Service{
		Name:    "abandoned-worker",
		Kind:    KindGoroutine,
		Summary: "The goroutine count rises by one for every search that times out and never falls; memory follows it slowly.",
		Hints: []string{
			"Look at the goroutine profile: thousands of goroutines are parked in the same place, in 'chan send'.",
			"The search handler gives up after a timeout, but the worker it started still wants to hand over its result. Who is left to receive it?",
			"Give the result channel a buffer of one (the worker can always send and exit), or have the worker select on the request's context.",
		},
		Culprit:   pkgPath + ".(*searchService).backend",
		Profile:   "goroutine",
		Endpoints: []Endpoint{{Method: "GET", Path: "/search?q=item-{i}", Doc: "searches with a 5 ms deadline; the backend takes 20 ms"}},
		Symptom:   Symptom{Metric: "go_sched_goroutines_goroutines", Leaky: 300, Fixed: 20},
		Explanation: "The handler starts a worker and waits for its result or a timeout. On timeout the handler returns, and " +
			"the worker blocks forever on an unbuffered send that no one will receive, keeping its stack and its result. " +
			"The fixed variant gives the channel a buffer of one, so the late send completes and the worker exits. " +
			"Built with GOEXPERIMENT=goroutineleakprofile, the runtime's goroutineleak profile proves these leaks.",
		build: func(env *Env) (http.Handler, error) {
			s := &searchService{env: env, timeout: 5 * time.Millisecond, latency: 20 * time.Millisecond}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /search", s.search)
			return mux, nil
		},
	})
}

type searchResult struct {
	query string
	hits  []string
}

type searchService struct {
	env     *Env
	timeout time.Duration
	latency time.Duration
}

func (s *searchService) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	buffer := 0
	mayLeak := !s.env.Fixed && s.env.Budget.Take(GoroutineCost)
	if !mayLeak {
		buffer = 1
	}
	results := make(chan searchResult, buffer)
	go s.backend(q, results)

	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	select {
	case res := <-results:
		if mayLeak {
			// The worker handed its result over in time and exits: no
			// goroutine leaked, so give back what was reserved for one.
			s.env.Budget.Release(GoroutineCost)
		}
		fmt.Fprintf(w, "%d hits for %q\n", len(res.hits), res.query)
	case <-ctx.Done():
		http.Error(w, "search timed out", http.StatusGatewayTimeout)
	}
}

// backend runs the slow search and hands the result back.
func (s *searchService) backend(q string, results chan<- searchResult) {
	time.Sleep(s.latency)
	results <- searchResult{query: q, hits: []string{q + "-1", q + "-2"}}
}
