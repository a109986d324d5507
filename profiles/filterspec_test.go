package profiles

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/opterr"
)

func TestFilterSpec(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	got, err := FilterSpec{Target: "127.0.0.1:8080", Type: "heap", Since: "2h", Until: "2026-11-25T11:30:00Z",
		Labels: []string{"env=staging", "job="}}.Filter(now)
	if err != nil {
		t.Fatal(err)
	}
	want := Filter{Target: "127.0.0.1:8080", Type: "heap", Since: now.Add(-2 * time.Hour),
		Until: time.Date(2026, 11, 25, 11, 30, 0, 0, time.UTC), Labels: map[string]string{"env": "staging", "job": ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if got, err := (FilterSpec{Since: "1.5d"}).Filter(now); err != nil || !got.Since.Equal(now.Add(-36*time.Hour)) {
		t.Errorf("Since 1.5d: %v, %v", got.Since, err)
	}
	for _, tc := range []struct {
		spec FilterSpec
		want string
	}{
		{FilterSpec{Labels: []string{"novalue"}}, `Labels "novalue": want KEY=VALUE`},
		{FilterSpec{Labels: []string{"=x"}}, `Labels "=x": want KEY=VALUE`},
		{FilterSpec{Labels: []string{"env=a", "env=b"}}, `Labels env is given twice ("a" and "b")`},
		{FilterSpec{Since: "yesterday"}, `Since "yesterday": want RFC 3339`},
		{FilterSpec{Until: "-2h"}, `Until "-2h": want RFC 3339`},
	} {
		if _, err := tc.spec.Filter(now); !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an option error with %q", tc.spec, err, tc.want)
		}
	}
}

func TestPruneSpec(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	got, err := PruneSpec{FilterSpec: FilterSpec{Type: "cpu"}, OlderThan: "7d", Keep: 3, DryRun: true}.Options(now)
	want := PruneOptions{Filter: Filter{Type: "cpu"}, OlderThan: 7 * 24 * time.Hour, Keep: 3, Now: now, DryRun: true}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v\nwant %+v", got, err, want)
	}
	if got, err := (PruneSpec{All: true}).Options(now); err != nil || got.OlderThan != 0 {
		t.Errorf("All: %+v, %v", got, err)
	}
	for _, tc := range []struct {
		spec PruneSpec
		want string
	}{
		{PruneSpec{}, "say what to prune: OlderThan DURATION, or All"},
		{PruneSpec{OlderThan: "0s"}, `OlderThan "0s": want a positive duration`},
		{PruneSpec{OlderThan: "soon"}, `OlderThan "soon": want a positive duration`},
		{PruneSpec{All: true, Keep: -1}, "Keep must not be negative"},
		{PruneSpec{All: true, FilterSpec: FilterSpec{Since: "x"}}, `Since "x"`},
	} {
		if _, err := tc.spec.Options(now); !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an option error with %q", tc.spec, err, tc.want)
		}
	}
}
