package watch_test

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/profiles/watch"
)

// pushPrefix and collectedLabel are how the collector stores pushed
// profiles (collect.PushTargetPrefix, collect.LabelCollected), spelled
// out: importing collect here would compile it a second time for this
// package's test binary, which is built last in go test ./... (a clean
// clone compiles the module again, 2.7 CPU-s for collect's copy).
const pushPrefix, collectedLabel = "push://", "collected"

// The collector stores pushed profiles under push://APP, which is no URL
// to fetch from. Replaying that target judges its profiles as replaying
// the service's URL judges the same profiles captured from it: real
// snapshots of a leaky sample service, watched under load, are stored
// again under push://APP, and both replays must agree.
func TestReplayPushTarget(t *testing.T) {
	t.Parallel()
	svc, err := leaks.Lookup("abandoned-worker")
	if err != nil {
		t.Fatal(err)
	}
	url := testbin.StartService(t, svc.Name, false).URL
	store, err := profiles.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	live := watchUnderLoad(t, svc, url, 0, watch.Options{Every: time.Second, For: 6 * time.Second, Store: store})

	app := pushPrefix + "leaklab." + svc.Name
	captured, err := store.List(profiles.Filter{Target: url})
	if err != nil || len(captured) < 2*live.Snapshots {
		t.Fatalf("the watch stored %d profiles (%v), want heap and goroutine for each of %d snapshots", len(captured), err, live.Snapshots)
	}
	for _, m := range captured {
		c, err := store.Load(m.ID, profiles.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		c.Target = app
		c.Labels = map[string]string{"app": "leaklab." + svc.Name, collectedLabel: "push"}
		if _, err := store.Save(c); err != nil {
			t.Fatal(err)
		}
	}

	ctx := context.Background()
	opts := watch.ReplayOptions{DetectorOptions: watch.DetectorOptions{Own: live.Own}}
	fromURL, err := watch.Replay(ctx, store, url, opts)
	if err != nil {
		t.Fatalf("replay of %s: %v", url, err)
	}
	pushed, err := watch.Replay(ctx, store, app, opts)
	if err != nil {
		t.Fatalf("replay of %s: %v", app, err)
	}
	if pushed.Target != app || pushed.Snapshots != live.Snapshots || pushed.Failures != 0 ||
		!pushed.Started.Equal(fromURL.Started) || !pushed.Ended.Equal(fromURL.Ended) {
		t.Errorf("replay of %s: target %s, %d snapshots (%d failed) from %s to %s; want %d snapshots from %s to %s, as %s's",
			app, pushed.Target, pushed.Snapshots, pushed.Failures, pushed.Started, pushed.Ended,
			live.Snapshots, fromURL.Started, fromURL.Ended, url)
	}
	if got, want := growing(pushed), growing(fromURL); !reflect.DeepEqual(got, want) {
		t.Errorf("growing sites differ:\n%s: %+v\n%s: %+v", app, got, url, want)
	}
	if got, want := suspectsWithoutIDs(pushed), suspectsWithoutIDs(fromURL); !reflect.DeepEqual(got, want) {
		t.Errorf("suspects differ:\n%s: %+v\n%s: %+v", app, got, url, want)
	}
	t.Logf("%s: %d snapshots, suspects %v", app, pushed.Snapshots, suspectNames(pushed))

	// A pushing application with nothing stored is reported as such, not
	// as a URL the watcher cannot fetch.
	_, err = watch.Replay(ctx, store, pushPrefix+"nobody", opts)
	if err == nil || !strings.Contains(err.Error(), "no heap or goroutine profiles of push://nobody") {
		t.Errorf("replay of a push target with nothing stored: %v", err)
	}
}

// suspectsWithoutIDs drops what names store entries (the snapshots a
// trend spans, the diff command over them), which differ between copies.
func suspectsWithoutIDs(rep *watch.Report) []watch.Suspect {
	out := make([]watch.Suspect, len(rep.Suspects))
	for i, s := range rep.Suspects {
		s.FirstSnapshot, s.LastSnapshot, s.Next = "", "", ""
		out[i] = s
	}
	return out
}

// growing is the report's top growing sites that grow, in a fixed order:
// sites that do not grow tie, and which of them make the list, in which
// order, varies from one run of the detector to the next.
func growing(rep *watch.Report) []watch.SiteTrend {
	var out []watch.SiteTrend
	for _, st := range rep.TopGrowing {
		if st.GrowthPerMinute > 0 {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b watch.SiteTrend) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Function, b.Function), cmp.Compare(a.WaitState, b.WaitState))
	})
	return out
}
