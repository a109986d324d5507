package leaks

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register(&Service{
		Name:    "retry-storm",
		Kind:    KindCPU,
		Summary: "When the payment provider has an outage, the service's CPU goes to 100% and the provider sees fifty times the normal call rate, which keeps it down.",
		Hints: []string{
			"leaklab_dependency_calls_total rises far faster than leaklab_http_requests_total; a CPU profile shows the time going into the payment call, again and again.",
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
			s := &checkoutService{env: env, provider: &paymentProvider{calls: calls, down: true}}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /checkout", s.checkout)
			return mux, nil
		},
	})
}

var errProviderDown = errors.New("payment provider unavailable")

// paymentProvider stands for a remote payment API; during an outage every call fails.
type paymentProvider struct {
	calls prometheus.Counter
	down  bool
}

func (p *paymentProvider) charge(order string) error {
	p.calls.Inc()
	// The work of a real call: encode, sign, wait for the reply.
	sum := sha256.Sum256([]byte(order))
	for range 20 {
		sum = sha256.Sum256(sum[:])
	}
	if p.down {
		return errProviderDown
	}
	return nil
}

type checkoutService struct {
	env      *Env
	provider *paymentProvider
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

// chargeWithRetry charges an order, retrying failures.
func (s *checkoutService) chargeWithRetry(ctx context.Context, order string) (int, error) {
	if !s.env.Fixed {
		var err error
		for attempt := 1; attempt <= stormAttempts; attempt++ {
			if err = s.provider.charge(order); err == nil {
				return attempt, nil
			}
		}
		return stormAttempts, err
	}
	var err error
	for attempt := 1; attempt <= retryAttempts; attempt++ {
		if err = s.provider.charge(order); err == nil {
			return attempt, nil
		}
		if attempt == retryAttempts {
			break
		}
		bound := min(retryBaseDelay<<(attempt-1), retryMaxDelay)
		select {
		case <-time.After(rand.N(bound) + 1):
		case <-ctx.Done():
			return attempt, ctx.Err()
		}
	}
	return retryAttempts, err
}
