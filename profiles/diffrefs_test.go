package profiles

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// A URL side takes the other side's type, and a goroutine diff names leak
// sites after the module the live side's go_build_info reports.
func TestDiffRefsInfersTypeAndOwnCode(t *testing.T) {
	t.Parallel()
	srv := startSample(t, "abandoned-worker")
	ctx := context.Background()
	for _, typ := range []string{TypeGoroutine, TypeHeap} {
		file := filepath.Join("testdata", typ+"-base.pb.gz")
		rep, sides, err := DiffRefs(ctx, file, srv.URL(), RefOptions{}, DiffOptions{})
		if err != nil {
			t.Fatalf("%s file against the service: %v", typ, err)
		}
		if sides[0].Type != typ || sides[1].Type != typ {
			t.Errorf("sides are %s and %s, want the URL side captured as the file's %s", sides[0].Type, sides[1].Type, typ)
		}
		own := ""
		if rep.OwnCode != nil {
			own = fmt.Sprint(rep.OwnCode.Modules)
		}
		if want := map[string]string{TypeGoroutine: "[" + strings.TrimSuffix(detectedModule(t, srv.URL()), "/") + "]", TypeHeap: ""}[typ]; own != want {
			t.Errorf("%s diff: own code %q, want %q", typ, own, want)
		}
	}
	// The URL side first and an explicit type: the URL is captured as told.
	_, sides, err := DiffRefs(ctx, srv.URL(), filepath.Join("testdata", "heap-base.pb.gz"), RefOptions{Fetch: FetchOptions{Type: TypeAllocs}}, DiffOptions{})
	if sides[0] == nil || sides[0].Type != TypeAllocs {
		t.Errorf("with an explicit type the URL side is %+v (err %v), want allocs", sides[0], err)
	}
	// --own given: no detection.
	rep, _, err := DiffRefs(ctx, filepath.Join("testdata", "goroutine-base.pb.gz"), srv.URL(), RefOptions{}, DiffOptions{Own: OwnCodeFor("example.com/other")})
	if err != nil || rep.OwnCode == nil || fmt.Sprint(rep.OwnCode.Modules) != "[example.com/other]" {
		t.Errorf("own code given: %+v, %v", rep, err)
	}
}

func detectedModule(t *testing.T, url string) string {
	t.Helper()
	mod := DetectModule(context.Background(), nil, url)
	if mod == "" {
		t.Fatalf("%s/metrics has no go_build_info path", url)
	}
	return mod
}
