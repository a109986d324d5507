package watch_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles/watch"
)

// unclosed-body never closes its HTTP client's response bodies: every
// request pins a connection, whose read and write goroutines run in
// net/http's connection loops with no own code on their stacks. The watch
// names the growing connections after the own code that sends the
// requests, found in the heap profile, once (not once per loop).
func TestNamesHTTPClientConnectionsAfterTheirCaller(t *testing.T) {
	if testing.Short() {
		t.Skip("watches for 12s; skipped with -short")
	}
	t.Parallel()
	svc, _ := leaks.Lookup("unclosed-body")
	url := testbin.StartService(t, svc.Name, false).URL
	// The requests allocate about 4 KB each through the HTTP client, and a
	// heap profile samples one allocation per 512 KiB: at the catalog's 20
	// requests/s, 12 s would give two samples, none in one watch in seven.
	// At 100/s, about nine.
	rep := watchUnderLoad(t, svc, url, 100, watch.Options{Every: time.Second, For: 12 * time.Second})
	var conns []watch.Suspect
	for _, s := range rep.Suspects {
		if s.Connections != "" {
			conns = append(conns, s)
		}
		if s.Kind == watch.KindGoroutine && !s.OwnCode && s.Connections == "" &&
			(s.Function == "net/http.(*persistConn).readLoop" || s.Function == "net/http.(*persistConn).writeLoop") {
			t.Errorf("client connection loop left unnamed: %+v", s)
		}
	}
	if len(conns) != 1 {
		t.Fatalf("want one suspect for the pinned connections, got %d; suspects %v", len(conns), suspectNames(rep))
	}
	s := conns[0]
	if s.Kind != watch.KindGoroutine || s.Function != svc.Culprit || len(s.HTTPCallers) == 0 || s.HTTPCallers[0].Function != svc.Culprit || s.HTTPCallers[0].Share <= 0.5 {
		t.Errorf("suspect %s in %s, callers %+v; want %s first", s.Function, s.Connections, s.HTTPCallers, svc.Culprit)
	}
	var text, page bytes.Buffer
	watch.WriteText(&text, rep)
	watch.WriteHTML(&page, rep)
	for name, out := range map[string]string{"text": text.String(), "html": page.String()} {
		if !strings.Contains(out, "HTTP client connections held open") || !strings.Contains(out, "(*stockService).fetchStock") {
			t.Errorf("the %s report does not explain the connections:\n%s", name, out)
		}
	}
}
