package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/profiles/collect"
)

const testForwardPassword = "hunter2-never-in-logs"

func TestCollectForwardAuthUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	passFile := filepath.Join(dir, "password")
	if err := os.WriteFile(passFile, []byte(testForwardPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fwd := "http://127.0.0.1:1"
	for _, tc := range []struct {
		name    string
		env     string // LEAKLAB_FORWARD_PASSWORD
		args    []string
		code    int
		errLine string
	}{
		{"tenant without forward", "", []string{"--forward-tenant", "a"}, exitUsage, "need --forward"},
		{"user without forward", "", []string{"--forward-user", "u"}, exitUsage, "need --forward"},
		{"user without a password", "", []string{"--forward", fwd, "--forward-user", "u"}, exitUsage, "--forward-user u needs a password: set $LEAKLAB_FORWARD_PASSWORD or give --forward-password-file"},
		{"password file without user", "", []string{"--forward", fwd, "--forward-password-file", passFile}, exitUsage, "--forward-password-file needs --forward-user"},
		{"password twice", testForwardPassword, []string{"--forward", fwd, "--forward-user", "u", "--forward-password-file", passFile}, exitUsage, "the password is given twice"},
		{"credentials in the URL", "", []string{"--forward", "http://u:" + testForwardPassword + "@127.0.0.1:1"}, exitUsage, "leave credentials out of the URL"},
		{"missing password file", "", []string{"--forward", fwd, "--forward-user", "u", "--forward-password-file", filepath.Join(dir, "nope")}, exitFailure, "cannot read --forward-password-file"},
		{"empty password file", "", []string{"--forward", fwd, "--forward-user", "u", "--forward-password-file", emptyFile}, exitFailure, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"collect", "--listen", "127.0.0.1:0"}, tc.args...)
			out, errOut, got := leaklabEnv(t, t.TempDir(), map[string]string{collect.ForwardPasswordEnv: tc.env}, args...)
			if got != tc.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", got, tc.code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "leaklab: ") || !strings.Contains(lines[0], tc.errLine) {
				t.Errorf("stderr %q, want one line 'leaklab: ...%s...'", errOut, tc.errLine)
			}
			if strings.Contains(errOut+out, testForwardPassword) {
				t.Errorf("the password was printed: %s", errOut)
			}
		})
	}
}

// forwardStandIn is a loopback HTTP server in place of a multi-tenant
// Pyroscope: it records each ingest request's tenant and basic auth and
// accepts it only when its multipart body holds a pprof profile.
type forwardStandIn struct {
	mu   sync.Mutex
	seen []string // "tenant user password" per accepted request
	bad  []string
}

func (s *forwardStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(msg string) {
		s.mu.Lock()
		s.bad = append(s.bad, msg)
		s.mu.Unlock()
		http.Error(w, msg, http.StatusBadRequest)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/ingest" || r.URL.Query().Get("name") == "" {
		fail(r.Method + " " + r.URL.String())
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		fail("not multipart: " + err.Error())
		return
	}
	parsed := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(err.Error())
			return
		}
		if part.FormName() == "profile" {
			if _, err := profile.Parse(part); err != nil {
				fail("profile part: " + err.Error())
				return
			}
			parsed = true
		}
	}
	if !parsed {
		fail("no profile part")
		return
	}
	user, pass, _ := r.BasicAuth()
	s.mu.Lock()
	s.seen = append(s.seen, r.Header.Get("X-Scope-OrgID")+" "+user+" "+pass)
	s.mu.Unlock()
}

// TestCollectForwardAuthEndToEnd runs the collector pulling from a real
// service and forwarding to the stand-in with a tenant and basic auth,
// the password once from a file and once from the environment.
func TestCollectForwardAuthEndToEnd(t *testing.T) {
	t.Parallel()
	svc := testbin.StartService(t, "abandoned-worker", true)
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(targets, []byte("- targets: ['"+strings.TrimPrefix(svc.URL, "http://")+"']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(dir, "password")
	if err := os.WriteFile(passFile, []byte(testForwardPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		env   string
		extra []string
	}{
		{"password file", "", []string{"--forward-password-file", passFile}},
		{"password in the environment", testForwardPassword, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			standIn := &forwardStandIn{}
			srv := httptest.NewServer(standIn)
			defer srv.Close()
			args := append([]string{"collect", "--targets", targets, "--type", "goroutine", "--every", "300ms", "--for", "3s",
				"--listen", "", "--no-store", "--forward", srv.URL, "--forward-tenant", "team-a", "--forward-user", "collector"}, tc.extra...)
			_, stderr, code := leaklabEnv(t, t.TempDir(), map[string]string{collect.ForwardPasswordEnv: tc.env}, args...)
			if code != 0 {
				t.Fatalf("collect exited %d:\n%s", code, stderr)
			}
			standIn.mu.Lock()
			defer standIn.mu.Unlock()
			if len(standIn.bad) > 0 {
				t.Errorf("the stand-in refused requests: %v", standIn.bad)
			}
			if len(standIn.seen) == 0 {
				t.Fatalf("nothing was forwarded:\n%s", stderr)
			}
			for _, s := range standIn.seen {
				if s != "team-a collector "+testForwardPassword {
					t.Errorf("a forward arrived with tenant, user and password %q", strings.Replace(s, testForwardPassword, "(the password)", 1))
				}
			}
			if strings.Contains(stderr, testForwardPassword) {
				t.Errorf("the password appears on stderr:\n%s", stderr)
			}
		})
	}
}
