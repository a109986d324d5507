package leaks

import (
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSearchAnsweredInTimeReleasesBudget checks that the leaky search gives
// back the goroutine it reserved from the leak budget when the backend
// answers before the deadline, so no goroutine leaked.
func TestSearchAnsweredInTimeReleasesBudget(t *testing.T) {
	b := newBudget(DefaultMaxLeak, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	s := &searchService{env: &Env{Budget: b}, timeout: 10 * time.Second, latency: 0}
	for range 10 {
		rec := httptest.NewRecorder()
		s.search(rec, httptest.NewRequest("GET", "/search?q=item-1", nil))
		if rec.Code != 200 {
			t.Fatalf("search: %d %s", rec.Code, rec.Body)
		}
	}
	if used := b.Used(); used != 0 {
		t.Errorf("after 10 searches answered in time the budget has %d bytes taken, want 0", used)
	}
}
