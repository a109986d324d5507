package watch

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/profiles"
)

// A goroutine dump and a pprof-format goroutine profile of the same
// quiet service name the same sites with the same counts, so the IDs'
// evidence is about the site a suspect is: captured from unclosed-body
// after it pinned connections, whose goroutines wait in select, IO wait,
// and chan receive among the service's own.
func TestGoroutineDumpSitesMatchProfileSites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sample service; skipped with -short")
	}
	t.Parallel()
	svc := testbin.StartService(t, "unclosed-body", false)
	const requests = 30
	for i := range requests {
		resp, err := http.Get(fmt.Sprintf("%s/stock?sku=sku-%d", svc.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ctx := context.Background()
	c, err := profiles.Fetch(ctx, svc.URL, profiles.FetchOptions{Type: profiles.TypeGoroutine, NoServiceName: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Profile()
	if err != nil {
		t.Fatal(err)
	}
	dump, err := profiles.FetchGoroutineDump(ctx, svc.URL, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(time.Now(), OwnCodeFor("github.com/leaklab/leaklab"))
	d.AddGoroutines(time.Now(), p, "")
	d.AddGoroutineDump(dump)

	pinned := 0
	for k, st := range d.gor.sites {
		if k.function == "" {
			continue // a sample without a stack (a goroutine being created): no site to compare
		}
		inProfile := int(st.points[len(st.points)-1].V)
		inDump := 0
		if ids := d.ids.sites[k]; ids != nil {
			inDump = len(ids.now)
		}
		// The two captures are moments apart: each is served by a goroutine
		// of its own, the previous one's connection may still be open, the
		// backend may still be finishing a reply. A site can differ by a
		// goroutine or two; a site named differently would differ by all.
		const slack = 2
		if inDump < inProfile-slack || inDump > inProfile+slack {
			t.Errorf("%s [%s]: %d goroutines in the profile, %d in the dump", k.function, k.wait, inProfile, inDump)
		}
		if k.function == "net/http.(*persistConn).readLoop" && k.wait == "select" {
			pinned = inDump
		}
	}
	if pinned < requests {
		t.Errorf("%d pinned connections' read loops in the dump, want at least %d", pinned, requests)
	}
}

func TestReadGoroutineDumpRefusesOtherText(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"html":       "<!DOCTYPE html><html><body>pprof</body></html>",
		"empty":      "",
		"bad header": "goroutine x [running]:\nmain.main()\n",
	} {
		if _, err := profiles.ReadGoroutineDump(strings.NewReader(body), 0); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err %v, want one line", name, err)
		}
	}
	big := strings.Repeat("goroutine 1 [running]:\nmain.main()\n\n", 1000)
	if _, err := profiles.ReadGoroutineDump(strings.NewReader(big), 1000); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a dump over the limit: err %v", err)
	}
	gs, err := profiles.ReadGoroutineDump(strings.NewReader("goroutine 7 [chan receive, 3 minutes]:\nmain.worker(...)\n\t/src/main.go:9\nmain.main.gowrap1()\n\t/src/main.go:4 +0x25\ncreated by main.main in goroutine 1\n\t/src/main.go:4 +0x1f\n"), 0)
	if err != nil || len(gs) != 1 || gs[0].ID != 7 || gs[0].WaitState != "chan receive" || strings.Join(gs[0].Functions, " ") != "main.worker main.main.gowrap1" {
		t.Errorf("parsed %+v, %v", gs, err)
	}
}
