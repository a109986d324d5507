package leaks

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register(&Service{
		Name:    "retry-storm",
		Kind:    KindCPU,
		Summary: "When the payment provider has an outage, the service's CPU goes to 100% and the provider sees fifty times the normal call rate, which keeps it down.",
		Hints: []string{
			"leaklab_dependency_calls_total rises far faster than leaklab_http_requests_total; a CPU profile shows the time going into HTTP calls to the provider, made again and again from one loop.",
			"The checkout retries a failed charge immediately, up to fifty times, with no pause between attempts.",
			"Retry a few times with exponential backoff and full jitter, inside the request's deadline, and fail fast (a 503) when the dependency is down.",
		},
		Culprit:   pkgPath + ".(*checkoutService).chargeWithRetry",
		Profile:   "cpu",
		Endpoints: []Endpoint{{Method: "POST", Path: "/checkout?order={i}", Doc: "charges an order through the payment provider (which is having an outage)"}},
		Symptom:   Symptom{Metric: "leaklab_dependency_calls_total", PerRequest: true, Leaky: 40, Fixed: 4},
		Drive:     Drive{Warmup: 50, Requests: 200, Concurrency: 8},
		Explanation: "Retrying at once, in a tight loop, turns every failing request into fifty calls: the client burns CPU " +
			"and the struggling provider gets a thundering herd exactly when it can least take it. The fixed variant " +
			"makes at most four attempts, sleeping a random time up to an exponentially growing bound between them, " +
			"and stops when the request's context ends.",
		build: func(env *Env) (http.Handler, error) {
			calls := prometheus.NewCounter(prometheus.CounterOpts{
				Name: "leaklab_dependency_calls_total",
				Help: "Calls made to the payment provider, retries included.",
			})
			env.Metrics.MustRegister(calls)
			provider, err := startPaymentProvider(env, calls)
			if err != nil {
				return nil, err
			}
			s := &checkoutService{env: env, provider: provider, client: &http.Client{
				Timeout:   time.Second,
				Transport: &http.Transport{MaxIdleConnsPerHost: 64},
			}}
			env.OnClose(s.client.CloseIdleConnections)
			mux := http.NewServeMux()
			mux.HandleFunc("POST /checkout", s.checkout)
			return mux, nil
		},
	})
}

// startPaymentProvider runs the service's payment dependency on a loopback
// port. It is having an outage: every charge fails with 503.
func startPaymentProvider(env *Env, calls prometheus.Counter) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("starting the payment provider: %w", err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Inc()
			io.Copy(io.Discard, r.Body)
			http.Error(w, "payment provider unavailable", http.StatusServiceUnavailable)
		}),
	}
	go srv.Serve(ln)
	env.OnClose(func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

type checkoutService struct {
	env      *Env
	provider string // base URL of the payment API
	client   *http.Client
}

func (s *checkoutService) checkout(w http.ResponseWriter, r *http.Request) {
	order := r.URL.Query().Get("order")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	attempts, err := s.chargeWithRetry(ctx, order)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, fmt.Sprintf("payment failed after %d attempts: %v", attempts, err), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "order %s paid\n", order)
}

// Retry policy of the fixed variant.
const (
	retryAttempts  = 4
	retryBaseDelay = time.Millisecond
	retryMaxDelay  = 50 * time.Millisecond
	stormAttempts  = 50 // the leaky variant's "just try harder"
)

// chargeWithRetry charges an order through the payment API, retrying failures.
func (s *checkoutService) chargeWithRetry(ctx context.Context, order string) (int, error) {
	attempts := stormAttempts
	if s.env.Fixed {
		attempts = retryAttempts
	}
	chargeURL := s.provider + "/v1/charges?" + url.Values{"order": {order}}.Encode()
	var err error
	for attempt := 1; attempt <= attempts; attempt++ {
		var req *http.Request
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, chargeURL, strings.NewReader(`{"amount":1999}`))
		if err != nil {
			return attempt, err
		}
		var resp *http.Response
		if resp, err = s.client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return attempt, nil
			}
			err = fmt.Errorf("payment provider: %s", resp.Status)
		}
		if !s.env.Fixed || attempt == attempts {
			continue // the leaky variant retries at once
		}
		bound := min(retryBaseDelay<<(attempt-1), retryMaxDelay)
		select {
		case <-time.After(rand.N(bound) + 1):
		case <-ctx.Done():
			return attempt, ctx.Err()
		}
	}
	return attempts, err
}
