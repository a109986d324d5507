package collect

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
)

// seenAuth is what one forwarded request carried.
type seenAuth struct {
	tenant, user, password string
	basic                  bool
}

// authRecorder records each forwarded request's tenant and credentials,
// then either refuses it (401, as a gateway does on wrong credentials)
// or hands it to the ingest wire-format checker.
type authRecorder struct {
	next   http.Handler
	refuse bool
	mu     sync.Mutex
	seen   []seenAuth
}

func (a *authRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, password, basic := r.BasicAuth()
	a.mu.Lock()
	a.seen = append(a.seen, seenAuth{tenant: r.Header.Get(TenantHeader), user: user, password: password, basic: basic})
	a.mu.Unlock()
	if a.refuse {
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	}
	a.next.ServeHTTP(w, r)
}

func (a *authRecorder) requests() []seenAuth {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seenAuth(nil), a.seen...)
}

// TestForwardAuth forwards a real service's profiles to the ingest
// stand-in with a tenant and basic auth, and checks every request carries
// them, that a request without them carries neither, and that the
// password never reaches the log, even when the target refuses it.
func TestForwardAuth(t *testing.T) {
	t.Parallel()
	svc := startService(t, "abandoned-worker", true, leaks.Options{})
	const password = "s3cret-Pa55-do-not-log"
	for _, tc := range []struct {
		name   string
		auth   ForwardAuth
		refuse bool
	}{
		{"tenant and basic auth", ForwardAuth{Tenant: "team-a", User: "collector", Password: password}, false},
		{"tenant only", ForwardAuth{Tenant: "team-b"}, false},
		{"none", ForwardAuth{}, false},
		{"refused credentials", ForwardAuth{Tenant: "team-a", User: "collector", Password: password}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checker := &ingestChecker{t: t, got: map[string][][]string{}, labels: map[string]map[string]string{}}
			rec := &authRecorder{next: checker, refuse: tc.refuse}
			pyro := httptest.NewServer(rec)
			defer pyro.Close()
			logs := &testbin.SyncBuffer{}
			r := startCollector(t, Options{
				Discover: StaticTargets{{URL: svc.URL()}}, Every: 200 * time.Millisecond, Timeout: captureTimeout, Types: []string{profiles.TypeGoroutine},
				Forward: pyro.URL, ForwardAuth: tc.auth, Logger: slog.New(slog.NewTextHandler(logs, nil)),
			}, false)
			testbin.WaitFor(t, 30*time.Second, "forwarded requests", func() bool {
				if tc.refuse {
					return r.c.Summary().ForwardFailed >= 1
				}
				return checker.count() >= 2
			})
			r.stop(t)
			seen := rec.requests()
			if len(seen) == 0 {
				t.Fatal("no request reached the forward target")
			}
			for _, s := range seen {
				want := seenAuth{tenant: tc.auth.Tenant, user: tc.auth.User, password: tc.auth.Password, basic: tc.auth.User != ""}
				if s != want {
					t.Errorf("the forward target saw tenant %q, basic auth %v (user %q, password matches: %v); want tenant %q, user %q",
						s.tenant, s.basic, s.user, s.password == tc.auth.Password, tc.auth.Tenant, tc.auth.User)
				}
			}
			if tc.refuse && !strings.Contains(logs.String(), "forwarding a profile failed") {
				t.Errorf("a refused forward was not logged:\n%s", logs)
			}
			if strings.Contains(logs.String(), password) {
				t.Errorf("the password appears in the log:\n%s", logs)
			}
		})
	}
}

func TestForwardAuthRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		forward string
		auth    ForwardAuth
		errPart string
	}{
		{"credentials in the URL", "http://collector:hunter2xyz@127.0.0.1:4040", ForwardAuth{}, "leave credentials out of the URL"},
		{"a password without a user", "http://127.0.0.1:4040", ForwardAuth{Password: "pw"}, "needs a user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := profiles.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			_, err = New(Options{Store: st, Forward: tc.forward, ForwardAuth: tc.auth})
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("New: %v, want an error saying %q", err, tc.errPart)
			}
			if strings.Contains(err.Error(), "hunter2xyz") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	// Basic auth over plain http to another host is allowed, with a
	// warning; to loopback it is not worth one.
	for _, tc := range []struct {
		forward string
		warn    bool
	}{
		{"http://pyroscope.example:4040", true},
		{"https://pyroscope.example:4040", false},
		{"http://127.0.0.1:4040", false},
	} {
		logs := &testbin.SyncBuffer{}
		st, err := profiles.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(Options{Store: st, Forward: tc.forward, ForwardAuth: ForwardAuth{User: "u", Password: "p"}, Logger: slog.New(slog.NewTextHandler(logs, nil))}); err != nil {
			t.Fatal(err)
		}
		if warned := strings.Contains(logs.String(), "plain http"); warned != tc.warn {
			t.Errorf("%s: warned %v, want %v (%s)", tc.forward, warned, tc.warn, logs)
		}
	}
}
