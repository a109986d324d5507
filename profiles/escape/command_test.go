package escape

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
	"github.com/leaklab/leaklab/profiles"
)

func TestCommandReviewOptions(t *testing.T) {
	ro, err := CommandOptions{Dir: "d", Packages: []string{"./x"}, GCFlags: " -l  -N ", Kinds: []string{"moved-to-heap", " escapes"},
		Func: "^render$", File: "server.go", Base: "HEAD", Profile: "p.pb.gz"}.ReviewOptions()
	if err != nil {
		t.Fatal(err)
	}
	if ro.Dir != "d" || !slices.Equal(ro.GCFlags, []string{"-l", "-N"}) || !slices.Equal(ro.Filter.Kinds, []Kind{KindMovedToHeap, KindEscapes}) ||
		ro.Filter.Func.String() != "^render$" || ro.Filter.File != "server.go" || ro.Base != "HEAD" || ro.ProfileName != "p.pb.gz" || ro.Profile != nil {
		t.Errorf("review options %+v", ro)
	}
	for _, tc := range []struct {
		c    CommandOptions
		want string
	}{
		{CommandOptions{Kinds: []string{"heap"}}, `Kinds: unknown kind "heap"`},
		{CommandOptions{Func: "("}, "Func: error parsing regexp"},
		{CommandOptions{GCFlags: "all=-l"}, `GCFlags "all=-l": give compiler flags (like -l) without a package pattern`},
	} {
		if _, err := tc.c.ReviewOptions(); !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an option error containing %q", tc.c, err, tc.want)
		}
	}
}

// A profile that cannot be read fails before any compile.
func TestCommandRunBadProfile(t *testing.T) {
	dir := t.TempDir()
	c := CommandOptions{Dir: dir, Profile: "no-such.pprof",
		OpenStore: func() (*profiles.Store, error) { return profiles.Open(dir) }}
	if _, err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "pricing profile: no-such.pprof") {
		t.Errorf("err = %v, want the pricing profile named", err)
	}
}
