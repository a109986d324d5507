package leaks

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register(&Service{
		Name:    "label-cardinality",
		Kind:    KindHeap,
		Summary: "Memory grows with the number of distinct users, /metrics gets longer with every new user, and Prometheus ends up storing a series per user.",
		Hints: []string{
			"The heap profile shows client_golang's metric vectors growing under the orders handler; curl /metrics and count the lines.",
			"A latency histogram is labelled with the user ID from the request, so every new user creates a new time series that lives forever.",
			"Label by bounded values only (route, status, plan tier); put per-user detail in logs or traces, not in metric labels.",
		},
		Culprit:   pkgPath + ".(*ordersAPI).record",
		Profile:   "heap",
		Retainer:  "prometheus.metricMap.metrics",
		Rate:      200,
		Endpoints: []Endpoint{{Method: "GET", Path: "/orders?user=user-{i}", Doc: "lists a user's orders and counts the request"}},
		Symptom:   Symptom{Metric: "go_gc_heap_live_bytes", Leaky: 1 << 20, Fixed: 256 << 10},
		Drive:     Drive{Warmup: 100, Requests: 1500, Concurrency: 8},
		Explanation: "Every distinct label value is a histogram (a dozen series) the registry keeps until the process exits, with its label " +
			"pairs, hash and sample state, and that Prometheus must then store and index. The fixed variant labels " +
			"by plan tier, which has three values however many users there are.",
		build: func(env *Env) (http.Handler, error) {
			api := &ordersAPI{env: env, seen: map[string]bool{}}
			api.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "leaklab_orders_request_duration_seconds",
				Help:    "Order listing latency, by user (leaky) or by plan tier (fixed).",
				Buckets: prometheus.DefBuckets,
			}, []string{api.labelName()})
			env.Metrics.MustRegister(api.latency)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /orders", api.serveOrders)
			return mux, nil
		},
	})
}

// seriesCost is what one more histogram (a dozen series) costs in the
// registry, as measured by the catalog test (about 1.3 KB).
const seriesCost = 1536

type ordersAPI struct {
	env     *Env
	latency *prometheus.HistogramVec
	mu      sync.Mutex
	seen    map[string]bool // leaky: users that already have a series
}

func (a *ordersAPI) labelName() string {
	if a.env.Fixed {
		return "tier"
	}
	return "user"
}

func tierOf(user string) string {
	switch len(user) % 3 {
	case 0:
		return "free"
	case 1:
		return "pro"
	}
	return "enterprise"
}

// record observes a request's latency in the per-label histogram.
func (a *ordersAPI) record(user string, took time.Duration) {
	if a.env.Fixed {
		a.latency.WithLabelValues(tierOf(user)).Observe(took.Seconds())
		return
	}
	a.mu.Lock()
	known := a.seen[user]
	if !known && a.env.Budget.Take(seriesCost) {
		a.seen[user] = true
		known = true
	}
	a.mu.Unlock()
	if !known {
		user = "other" // at the leak cap
	}
	a.latency.WithLabelValues(user).Observe(took.Seconds())
}

func (a *ordersAPI) serveOrders(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	user := r.URL.Query().Get("user")
	fmt.Fprintf(w, "no orders for %s yet\n", user)
	a.record(user, time.Since(start))
}
