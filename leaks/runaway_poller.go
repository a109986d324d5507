package leaks

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

func init() {
	register(&Service{
		Name:    "runaway-poller",
		Kind:    KindGoroutine,
		Summary: "Each tracked order adds a goroutine that never goes away, and CPU use creeps up all day as thousands of them wake up to poll.",
		Hints: []string{
			"The goroutine profile has a growing group sleeping in the same loop.",
			"The order tracker starts a polling loop per request. What makes that loop stop once the order is delivered, or the service shuts down?",
			"Give the loop a context (with a deadline) and an exit condition, and select on ctx.Done() next to the ticker.",
		},
		Culprit:   pkgPath + ".(*orderTracker).pollStatus",
		Profile:   "goroutine",
		Endpoints: []Endpoint{{Method: "POST", Path: "/track?order={i}", Doc: "starts tracking an order's delivery status in the background"}},
		Symptom:   Symptom{Metric: "go_sched_goroutines_goroutines", Leaky: 300, Fixed: 20},
		Explanation: "The handler starts a background loop that polls the order's status forever: it has no context, no " +
			"deadline and ignores that the order reached its final state. The fixed variant passes a context " +
			"derived from the service's lifetime with a deadline, and returns once the order is delivered.",
		build: func(env *Env) (http.Handler, error) {
			t := &orderTracker{env: env, every: 100 * time.Millisecond}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /track", t.serveTrack)
			return mux, nil
		},
	})
}

type orderTracker struct {
	env       *Env
	every     time.Duration
	polls     atomic.Int64
	delivered atomic.Int64
}

func (t *orderTracker) serveTrack(w http.ResponseWriter, r *http.Request) {
	order := queryInt(r, "order", 0)
	if t.env.Fixed || !t.env.Budget.Take(GoroutineCost) {
		ctx, cancel := context.WithTimeout(t.env.Context(), 10*time.Second)
		go func() {
			defer cancel()
			t.pollStatus(ctx, order)
		}()
	} else {
		go t.pollStatus(context.Background(), order)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"order": order, "tracking": true})
}

// status pretends to ask the carrier; orders are delivered after three polls.
func (t *orderTracker) status(order, poll int) string {
	t.polls.Add(1)
	if poll >= 3 {
		return "delivered"
	}
	return fmt.Sprintf("in transit (%d)", order%7)
}

// pollStatus polls an order's status in the background.
func (t *orderTracker) pollStatus(ctx context.Context, order int) {
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for poll := 1; ; poll++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if t.status(order, poll) == "delivered" {
			t.delivered.Add(1)
			if t.env.Fixed {
				return
			}
		}
	}
}
