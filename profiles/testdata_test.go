package profiles

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
)

// The profile pairs under testdata are real captures from the sample
// services. Regenerate them with:
//
//	go test ./profiles -run TestRegenerateTestdata -update
var update = flag.Bool("update", false, "regenerate testdata/*.pb.gz from live sample services")

// testdataPairs are the committed pairs: the service, the profile type,
// and the request that makes the leak grow between base and current.
var testdataPairs = []struct {
	name, service, typ, path string
	requests                 int
}{
	{"heap", "unbounded-cache", TypeHeap, "/product?id=%d", 200},
	{"goroutine", "abandoned-worker", TypeGoroutine, "/search?q=item-%d", 150},
}

func TestRegenerateTestdata(t *testing.T) {
	if !*update {
		t.Skip("run with -update to recapture testdata/*.pb.gz from the sample services")
	}
	for _, pair := range testdataPairs {
		svc := testbin.StartService(t, pair.service, false)
		ctx := context.Background()
		capture := func(side string) {
			c, err := Fetch(ctx, svc.URL, FetchOptions{Type: pair.typ})
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteFile(filepath.Join("testdata", pair.name+"-"+side+".pb.gz"), c); err != nil {
				t.Fatal(err)
			}
		}
		capture("base")
		for i := range pair.requests {
			resp, err := http.Get(svc.URL + fmt.Sprintf(pair.path, i))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		capture("current")
		svc.Stop(t)
	}
}

// loadPair reads a committed testdata pair.
func loadPair(t testing.TB, name string) (base, cur *Captured) {
	t.Helper()
	var err error
	if base, err = ReadFile(filepath.Join("testdata", name+"-base.pb.gz"), Limits{}); err != nil {
		t.Fatal(err)
	}
	if cur, err = ReadFile(filepath.Join("testdata", name+"-current.pb.gz"), Limits{}); err != nil {
		t.Fatal(err)
	}
	return base, cur
}
