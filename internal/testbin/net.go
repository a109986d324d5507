package testbin

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/leaklab/leaklab/internal/freeport"
)

// FreeAddr returns a loopback address ("127.0.0.1:port") that nothing
// listens on: a port the kernel just handed out and that was closed again.
// Tests use it for a target that refuses connections, or for a child
// process to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// DirNames lists the names of the entries of dir (a profile store, say),
// temporary files included. A dir that cannot be read fails the test.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// RecordingProxy serves a backend through a loopback proxy and keeps
// every body the backend answered under /debug/pprof/ with 200 OK, so a
// test can check what was stored or forwarded is byte for byte what the
// target served.
type RecordingProxy struct {
	URL string

	mu     sync.Mutex
	bodies [][]byte
}

// NewRecordingProxy starts a proxy to backend, closed when the test ends.
func NewRecordingProxy(t testing.TB, backend string) *RecordingProxy {
	t.Helper()
	p := &RecordingProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body := Forward(w, r, backend)
		if strings.HasPrefix(r.URL.Path, "/debug/pprof/") && status == http.StatusOK {
			p.mu.Lock()
			p.bodies = append(p.bodies, body)
			p.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Forward answers r with what backend (a base URL) answers to a GET of
// the same path and query, and returns its status and body; 502 and no
// body when the backend cannot be reached or read.
func Forward(w http.ResponseWriter, r *http.Request, backend string) (int, []byte) {
	resp, err := http.Get(backend + r.URL.RequestURI())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway, nil
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
	return resp.StatusCode, body
}

// Bodies returns the profile bodies served so far, and forgets them.
func (p *RecordingProxy) Bodies() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bodies
	p.bodies = nil
	return b
}

// Served reports whether b is one of the bodies served (and not yet
// taken by Bodies).
func (p *RecordingProxy) Served(b []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.bodies {
		if bytes.Equal(s, b) {
			return true
		}
	}
	return false
}

// FreePortRange returns the first of n consecutive loopback ports that
// nothing listens on, below the kernel's ephemeral range (freeport.Range),
// for a child that listens on a range of its own ('leaklab run --all
// --base-port').
func FreePortRange(t testing.TB, n int) int {
	t.Helper()
	base, err := freeport.Range(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}
