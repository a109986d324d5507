package watch

import (
	"testing"

	"github.com/leaklab/leaklab/profiles/retainers"
)

// The rules that pick a suspect's chain, on snapshots shaped as the scan
// makes them: the growing chain holding what the suspect allocated, by
// its growth times that share; else the chain that grew most, labelled.
func TestAttributeRetainers(t *testing.T) {
	cache := []string{"leaks.cache", "map[string]*leaks.page", "[value] leaks.page"}
	queue := []string{"leaks.(*worker).run frame: q", "leaks.queue", ".items []*leaks.job"}
	steady := []string{"leaks.config", "leaks.settings"}
	first := &retainers.Report{Chains: []retainers.Chain{
		{Chain: cache, Bytes: 1 << 20, Objects: 10},
		{Chain: queue, Bytes: 1 << 20, Objects: 10},
		{Chain: steady, Bytes: 4 << 20, Objects: 1},
	}}
	last := &retainers.Report{Chains: []retainers.Chain{
		// grew most, but what it holds was allocated by fill
		{Chain: queue, Bytes: 9 << 20, Objects: 90, SampledBytes: 8 << 20,
			AllocatedIn: map[string]int64{"leaks.(*queue).fill": 8 << 20, "leaks.(*cache).put": 1 << 10}},
		{Chain: cache, Bytes: 5 << 20, Objects: 50, SampledBytes: 4 << 20,
			AllocatedIn: map[string]int64{"leaks.(*cache).put": 4 << 20}},
		{Chain: steady, Bytes: 4 << 20, Objects: 1, SampledBytes: 4 << 20,
			AllocatedIn: map[string]int64{"leaks.(*cache).put": 4 << 20}},
	}}
	suspects := []Suspect{
		{Kind: KindHeap, Function: "leaks.(*cache).put"},
		{Kind: KindHeap, Function: "leaks.(*queue).fill"},
		{Kind: KindHeap, Function: "leaks.elsewhere"},
		{Kind: KindGoroutine, Function: "leaks.(*cache).put"},
	}
	if !attributeRetainers(suspects, first, last) {
		t.Fatal("no chain grew, says attributeRetainers")
	}
	for i, want := range []struct {
		chain       []string
		attribution string
		growth      int64
	}{
		{cache, AttributionAllocation, 4 << 20},
		{queue, AttributionAllocation, 8 << 20},
		{queue, AttributionOverall, 8 << 20},
	} {
		got := suspects[i].Retainer
		if got == nil || got.Chain[0] != want.chain[0] || got.Attribution != want.attribution || got.BytesGrowth != want.growth || got.ObjectsGrowth <= 0 {
			t.Errorf("%s: retainer %+v, want %s by %s growing %d bytes", suspects[i].Function, got, want.chain[0], want.attribution, want.growth)
		}
	}
	if suspects[3].Retainer != nil {
		t.Errorf("a goroutine suspect got a chain: %+v", suspects[3].Retainer)
	}
	none := []Suspect{{Kind: KindHeap, Function: "leaks.(*cache).put"}}
	if attributeRetainers(none, last, last) || none[0].Retainer != nil {
		t.Errorf("nothing grew between two equal snapshots, yet %+v", none[0].Retainer)
	}
}
