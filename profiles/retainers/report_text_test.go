package retainers

import (
	"bytes"
	"strings"
	"testing"
)

// Show cuts a copy to the top chains and counts them all; the text shows
// each chain root first and says when chains were left out.
func TestShowTopChains(t *testing.T) {
	r := &Report{PID: 7, Command: "svc", GoVersion: "go1.26", HeapBytes: 4096, BytesAttributed: 2048, Roots: 3, Goroutines: 2,
		Chains: []Chain{
			{Chain: []string{"main.cache", "map[string][]uint8", "[]uint8"}, Bytes: 1536, Objects: 10},
			{Chain: []string{"main.buf"}, Bytes: 512, Objects: 1},
		}}
	s := Show(r, 1, "id-1", "")
	if len(s.Chains) != 1 || s.TotalChains != 2 || len(r.Chains) != 2 {
		t.Fatalf("Show(top 1): %d chains of %d, report left with %d", len(s.Chains), s.TotalChains, len(r.Chains))
	}
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"PID 7 (svc, go1.26): paused 0.00s; 2 KiB of 4 KiB allocated heap reachable (50%) from 3 roots in 2 goroutines\n",
		"saved as id-1\n",
		"#1  1.5 KiB in 10 objects\n┬── main.cache\n├── map[string][]uint8\n╰─→ []uint8\n",
		"(1 of 2 chains; --top 0 shows all)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := Show(r, 0, "", "").WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "──→ main.buf\n") || strings.Contains(b.String(), "chains;") || strings.Contains(b.String(), "saved as") {
		t.Errorf("all chains, unsaved:\n%s", b.String())
	}
}
