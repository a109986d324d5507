package watch_test

import (
	"context"
	"slices"
	"testing"

	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/profiles/watch"
)

// 'leaklab watch --from-store --for auto' replays the store the way an
// Auto watch of that cadence would have judged it: the command's options
// reach Replay's Auto, and the report says it was an Auto watch.
func TestCommandReplaysAuto(t *testing.T) {
	t.Parallel()
	r := slowLeakRecording
	open := func() (*profiles.Store, error) { return profiles.Open(r.dir()) }
	store, err := open()
	if err != nil {
		t.Fatal(err)
	}
	metas, err := store.List(profiles.Filter{Type: profiles.TypeHeap})
	if err != nil || len(metas) == 0 {
		t.Fatalf("no recorded heap profiles in %s: %v", r.dir(), err)
	}
	target := metas[0].Target
	c := watch.CommandOptions{Target: target, FromStore: true, Auto: true,
		Every: r.opts.Every, For: r.opts.For, MaxFor: r.opts.MaxFor, MinHeapGrowth: "2MiB", OpenStore: open}
	got, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, err := watch.Replay(context.Background(), store, target, watch.ReplayOptions{DetectorOptions: watch.DetectorOptions{MinHeapGrowth: 2 << 20}, Auto: true, Every: r.opts.Every, For: r.opts.For, MaxFor: r.opts.MaxFor})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Auto || got.Every != r.opts.Every.Seconds() || got.MaxFor != r.opts.MaxFor.Seconds() {
		t.Errorf("watch --from-store --for auto reported auto=%v every=%gs max-for=%gs, want an Auto replay every %s up to %s",
			got.Auto, got.Every, got.MaxFor, r.opts.Every, r.opts.MaxFor)
	}
	if got.Snapshots != want.Snapshots || !slices.Equal(suspectNames(got), suspectNames(want)) {
		t.Errorf("the command replayed %d snapshots (%v), Replay with Auto %d (%v)", got.Snapshots, suspectNames(got), want.Snapshots, suspectNames(want))
	}
}
