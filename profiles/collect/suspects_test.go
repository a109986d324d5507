package collect

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/scale"
)

func TestWantsJSON(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]bool{
		"application/json":                          true,
		"application/json; charset=utf-8":           true,
		"text/html,application/xhtml+xml,*/*;q=0.8": false,
		"text/html, application/json":               false,
		"":                                          false,
		"*/*":                                       false,
	} {
		r, _ := http.NewRequest(http.MethodGet, "/suspects", nil)
		r.Header.Set("Accept", accept)
		if got := wantsJSON(r); got != want {
			t.Errorf("Accept %q: JSON %v, want %v", accept, got, want)
		}
	}
}

// chromiumDOM loads u in headless Chromium and returns the rendered DOM
// and Chromium's log.
func chromiumDOM(t *testing.T, chromium, u string) (string, string) {
	t.Helper()
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", u)
	var dom, logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &dom, &logs
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", u, err, logs.String())
	}
	return dom.String(), logs.String()
}

// TestSuspectsPageInChromium collects a leaky service until it is a
// suspect, then opens GET /suspects in headless Chromium: the suspect is
// listed with its trend drawn, and its diff link opens pprof's web UI on
// the diff of the two stored profiles, whose flame graph names the
// culprit.
func TestSuspectsPageInChromium(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("collects a sample service until it is a suspect; skipped with -short")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("LEAKLAB_CI") != "" {
			t.Fatal("chromium is required in CI (.ci/run installs it)")
		}
		t.Skip("SKIPPED: chromium is not installed (apt-get install chromium); the suspects page is not checked in a browser")
	}
	svc, err := leaks.Lookup("runaway-poller")
	if err != nil {
		t.Fatal(err)
	}
	proc := testbin.StartService(t, svc.Name, false)
	ctx, cancel := context.WithCancel(context.Background())
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		scale.Load(ctx, exercise.SteadyLoad(svc, proc.URL, 4, 5*time.Minute))
	}()
	defer func() { cancel(); <-loaded }()
	r := startCollector(t, Options{
		Discover: StaticTargets{{URL: proc.URL}}, Every: 500 * time.Millisecond, Detect: Detection{Window: 10 * time.Second},
	}, true)
	testbin.WaitFor(t, 2*time.Minute, "the culprit as a suspect", func() bool {
		for _, s := range r.c.Suspects() {
			if s.Function == svc.Culprit && s.BaseID != "" {
				return true
			}
		}
		return false
	})

	dom, logs := chromiumDOM(t, chromium, r.url+"/suspects")
	rows := strings.Count(dom, `class="suspect"`)
	charts := regexp.MustCompile(`<polyline [^>]*points="[0-9.]+,[0-9.]+ [^"]+"`).FindAllString(dom, -1)
	if rows == 0 || len(charts) != rows {
		t.Fatalf("%d suspects, %d drawn trend charts in the rendered page:\n%s", rows, len(charts), dom)
	}
	if !strings.Contains(dom, svc.Culprit) {
		t.Errorf("the page does not name the culprit %s", svc.Culprit)
	}
	if m := regexp.MustCompile(`(?m)^.*(CONSOLE|Uncaught).*$`).FindString(logs); m != "" {
		t.Errorf("console error: %s", m)
	}
	link := regexp.MustCompile(`<a class="diff" href="([^"]+)"`).FindStringSubmatch(dom)
	if link == nil {
		t.Fatalf("no diff link in the page:\n%s", dom)
	}
	// pprof's UI: "/" redirects to the flame graph, whose data names the
	// stacks of the diff; the culprit's goroutines grew, so it is there.
	ui, _ := chromiumDOM(t, chromium, r.url+strings.ReplaceAll(link[1], "&amp;", "&"))
	if !strings.Contains(ui, "pprof") || !strings.Contains(ui, "pollStatus") {
		t.Errorf("the diff link did not open pprof's web UI on the diff (want the culprit in it):\n%.2000s", ui)
	}

	// The JSON view of the same suspects.
	var listed []Suspect
	if ctype, err := getSuspectsJSON(t, r.url, &listed); err != nil || len(listed) == 0 || ctype != "application/json" {
		t.Errorf("JSON: %v, %d suspects, content type %q", err, len(listed), ctype)
	}
	cancel()
	<-loaded
	r.stop(t)
}
