package watch

import (
	"html"
	"strings"
	"testing"
	"time"
)

// The HTML report shows what the text report says about a suspect: its
// retainer chain, root first, and a site that grows in lockstep.
func TestHTMLShowsRetainerChainAndLockstep(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	rep := &Report{Target: "http://127.0.0.1:8080", Started: now, Ended: now.Add(time.Minute), Every: 5, For: 60, Suspects: []Suspect{
		{Kind: KindHeap, Function: "example.com/shop.(*cache).put", Confidence: Likely, Unit: "bytes", OwnCode: true,
			Points:   []Point{{0, 1 << 20}, {5, 2 << 20}, {10, 3 << 20}},
			Retainer: &SuspectRetainer{Chain: []string{"global example.com/shop.products", ".entries map[string]*entry", ".body []uint8"}, BytesGrowth: 2 << 20, ObjectsGrowth: 40, Attribution: AttributionAllocation}},
		{Kind: KindGoroutine, Function: "example.com/shop.readLoop", Confidence: Likely, Unit: "goroutines", OwnCode: true, Points: []Point{{0, 1}, {5, 11}, {10, 21}}},
		{Kind: KindGoroutine, Function: "example.com/shop.writeLoop", Confidence: Likely, Unit: "goroutines", OwnCode: true, Points: []Point{{0, 1}, {5, 11}, {10, 21}}, SameLeakAs: "example.com/shop.readLoop"},
	}}
	var page strings.Builder
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	got := html.UnescapeString(page.String())
	for _, want := range []string{
		"Held by: +40 objects, +2 MiB growth",
		"<li><code>global example.com/shop.products</code></li><li><code>.entries map[string]*entry</code></li><li><code>.body []uint8</code></li>",
		"Grows in lockstep with <code>example.com/shop.readLoop</code>",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
}
