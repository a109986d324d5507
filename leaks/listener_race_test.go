package leaks_test

import (
	"context"
	"testing"
	"time"

	"github.com/leaklab/leaklab/leaks"
)

// TestListenerLeakTicksDuringQuotes keeps quotes coming while the price
// feed ticks (every 100 ms) in both variants, so that under -race a quote
// reading its listener's price without the feed's lock shows up as a data
// race with the tick writing it.
func TestListenerLeakTicksDuringQuotes(t *testing.T) {
	inBothVariants(t, "listener-leak", func(t *testing.T, svc *leaks.Service, base string) {
		for deadline := time.Now().Add(350 * time.Millisecond); time.Now().Before(deadline); {
			hammer(t, base, svc, 16)
		}
	})
}

// inBothVariants runs check against the named service started in process,
// leaky then fixed, each in a subtest.
func inBothVariants(t *testing.T, name string, check func(t *testing.T, svc *leaks.Service, base string)) {
	t.Helper()
	svc, err := leaks.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, fixed := range []bool{false, true} {
		t.Run(string(leaks.VariantOf(fixed)), func(t *testing.T) {
			srv, err := leaks.Start(context.Background(), svc, leaks.Options{Addr: "127.0.0.1:0", Fixed: fixed})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown(context.Background())
			check(t, svc, srv.URL())
		})
	}
}
