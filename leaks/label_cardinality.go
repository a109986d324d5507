package leaks

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register(&Service{
		Name:    "label-cardinality",
		Kind:    KindHeap,
		Summary: "Memory grows with the number of distinct users, /metrics gets longer with every new user, and Prometheus ends up storing a series per user.",
		Hints: []string{
			"The heap profile shows client_golang's metric vectors growing under the orders handler; curl /metrics and count the lines.",
			"A metric is labelled with the user ID from the request, so every new user creates a new time series that lives forever.",
			"Label by bounded values only (route, status, plan tier); put per-user detail in logs or traces, not in metric labels.",
		},
		Culprit:   pkgPath + ".(*ordersAPI).record",
		Profile:   "heap",
		Rate:      200,
		Endpoints: []Endpoint{{Method: "GET", Path: "/orders?user=user-{i}", Doc: "lists a user's orders and counts the request"}},
		Symptom:   Symptom{Metric: "go_gc_heap_live_bytes", Leaky: 1 << 20, Fixed: 256 << 10},
		Drive:     Drive{Warmup: 200, Requests: 4000, Concurrency: 8},
		Explanation: "Every distinct label value is a series the registry keeps until the process exits, with its label " +
			"pairs, hash and sample state, and that Prometheus must then store and index. The fixed variant labels " +
			"by plan tier, which has three values however many users there are.",
		build: func(env *Env) (http.Handler, error) {
			api := &ordersAPI{env: env, seen: map[string]bool{}}
			api.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "leaklab_orders_requests_total",
				Help: "Order listings served, by user (leaky) or by plan tier (fixed).",
			}, []string{api.labelName()})
			env.Metrics.MustRegister(api.requests)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /orders", api.serveOrders)
			return mux, nil
		},
	})
}

// seriesCost is an estimate of what one extra series costs in the registry.
const seriesCost = 1 << 10

type ordersAPI struct {
	env      *Env
	requests *prometheus.CounterVec
	mu       sync.Mutex
	seen     map[string]bool // leaky: users that already have a series
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

// record counts a request in the per-label series.
func (a *ordersAPI) record(user string) {
	if a.env.Fixed {
		a.requests.WithLabelValues(tierOf(user)).Inc()
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
	a.requests.WithLabelValues(user).Inc()
}

func (a *ordersAPI) serveOrders(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	a.record(user)
	fmt.Fprintf(w, "no orders for %s yet\n", user)
}
