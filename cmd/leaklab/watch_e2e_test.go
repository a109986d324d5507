package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/leaks/exercise"
	"github.com/leaklab/leaklab/profiles"
	"github.com/leaklab/leaklab/scale"
)

// steadyLoad sends the service's steady load to its first endpoint until
// the test ends.
func steadyLoad(t *testing.T, url, name string) {
	svc, _ := leaks.Lookup(name)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		scale.Load(ctx, exercise.SteadyLoad(svc, url, 4, 5*time.Minute))
	}()
	t.Cleanup(func() { cancel(); <-done })
}

type watchJSON struct {
	Target    string `json:"target"`
	Snapshots int    `json:"snapshots"`
	Suspects  []struct {
		Kind            string   `json:"kind"`
		Function        string   `json:"function"`
		Stack           []string `json:"stack"`
		Confidence      string   `json:"confidence"`
		GrowthPerMinute float64  `json:"growth_per_minute"`
		Unit            string   `json:"unit"`
		Next            string   `json:"next"`
		Evidence        struct {
			Turnover *struct {
				Arrived  int     `json:"arrived"`
				Departed int     `json:"departed"`
				P        float64 `json:"p_value"`
			} `json:"turnover"`
		} `json:"evidence"`
	} `json:"suspects"`
	GoroutineIDs    bool   `json:"goroutine_ids"`
	GoroutineIDsOff string `json:"goroutine_ids_off"`
	Incomplete      string `json:"incomplete"`
	Own             struct {
		Prefixes []string `json:"prefixes"`
	} `json:"own_code"`
}

// The watch JSON contract and exit codes: a leaky service gives exit 3 and
// names its culprit, its fixed twin exit 0.
func TestWatchContractAndExitCodes(t *testing.T) {
	t.Parallel()
	svc, _ := leaks.Lookup("abandoned-worker")
	// The two variants' watches run at once within this test's turn
	// rather than as parallel subtests: a parallel subtest queues behind
	// every test already waiting for a turn, and in go test ./... these
	// two 12 s watches started 20 s after their parent, last of the
	// package (ab16).
	var variants sync.WaitGroup
	defer variants.Wait()
	for _, fixed := range []bool{false, true} {
		variants.Go(func() {
			t.Run(string(leaks.VariantOf(fixed)), func(t *testing.T) {
				url := testbin.StartService(t, svc.Name, fixed).URL
				steadyLoad(t, url, svc.Name)
				home := t.TempDir()
				out, errOut, code := leaklabIn(t, home, "watch", url, "--for", "12s", "--every", "1s", "--output", "json")
				var rep watchJSON
				if err := json.Unmarshal([]byte(out), &rep); err != nil {
					t.Fatalf("not JSON (%v): %s\nstderr: %s", err, out, errOut)
				}
				if rep.Target != url || rep.Snapshots < 10 || rep.Suspects == nil {
					t.Errorf("report header: %+v", rep)
				}
				// The service's own code comes from its go_build_info metric.
				if len(rep.Own.Prefixes) == 0 || rep.Own.Prefixes[0] != "github.com/leaklab/leaklab/" {
					t.Errorf("own code %v, want the module read from go_build_info", rep.Own.Prefixes)
				}
				if fixed {
					if code != 0 || len(rep.Suspects) != 0 {
						t.Errorf("fixed: exit %d, suspects %+v; want 0 and none", code, rep.Suspects)
					}
					return
				}
				if code != 3 || len(rep.Suspects) == 0 {
					t.Fatalf("leaky: exit %d, suspects %+v; want 3 and the culprit", code, rep.Suspects)
				}
				s := rep.Suspects[0]
				if s.Function != svc.Culprit || s.Kind != "goroutine" || s.Unit != "goroutines" || s.GrowthPerMinute <= 0 ||
					(s.Confidence != "likely" && s.Confidence != "possible" && s.Confidence != "proven") || !strings.HasPrefix(s.Next, "leaklab diff ") {
					t.Errorf("suspect %+v", s)
				}
				// The goroutine dumps' IDs: the leaked goroutines arrived and none left.
				if tv := s.Evidence.Turnover; !rep.GoroutineIDs || tv == nil || tv.Arrived < 10 || tv.Departed != 0 || tv.P > 0.001 {
					t.Errorf("goroutine IDs %v, turnover %+v; want many arrivals and no departure", rep.GoroutineIDs, tv)
				}
				if len(s.Stack) == 0 || s.Stack[len(s.Stack)-1] != svc.Culprit {
					t.Errorf("stack should be leaf first and end at the goroutine's own function: %v", s.Stack)
				}
				// The next command it suggests runs, and its diff names the
				// same leak site, by the same own code.
				if !strings.Contains(s.Next, " --own github.com/leaklab/leaklab") {
					t.Errorf("next command %q does not pass on the own code", s.Next)
				}
				args := append(shellWords(t, strings.TrimPrefix(s.Next, "leaklab ")), "--output", "json")
				out, errOut, code = leaklabIn(t, home, args...)
				var diff struct {
					LeakSites []struct {
						Function string `json:"function"`
						Delta    int64  `json:"delta"`
					} `json:"leak_sites"`
				}
				if err := json.Unmarshal([]byte(out), &diff); err != nil || code != 0 || len(diff.LeakSites) == 0 || diff.LeakSites[0].Function != svc.Culprit || diff.LeakSites[0].Delta <= 0 {
					t.Errorf("%s: exit %d, %v, leak sites %+v\nstderr: %s", s.Next, code, err, diff.LeakSites, errOut)
				}
				// The same snapshots, judged again from the store.
				out, errOut, code = leaklabIn(t, home, "watch", url, "--from-store", "--since", "1h", "--output", "json")
				var again watchJSON
				if err := json.Unmarshal([]byte(out), &again); err != nil || code != 3 || len(again.Suspects) == 0 || again.Suspects[0].Function != svc.Culprit {
					t.Errorf("--from-store: exit %d, %v, %s\nstderr: %s", code, err, out, errOut)
				}
			})
		})
	}
}

// Past --max-dump-goroutines the watch takes no goroutine dumps, says why,
// and still judges the counts.
func TestWatchWithoutGoroutineDumps(t *testing.T) {
	t.Parallel()
	svc, _ := leaks.Lookup("abandoned-worker")
	url := testbin.StartService(t, svc.Name, false).URL
	steadyLoad(t, url, svc.Name)
	out, errOut, code := leaklabIn(t, t.TempDir(), "watch", url, "--for", "8s", "--every", "1s", "--max-dump-goroutines", "1", "--output", "json")
	var rep watchJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 3 {
		t.Fatalf("exit %d, %v: %s\nstderr: %s", code, err, out, errOut)
	}
	if rep.GoroutineIDs || !strings.Contains(rep.GoroutineIDsOff, "--max-dump-goroutines") || len(rep.Suspects) == 0 || rep.Suspects[0].Evidence.Turnover != nil {
		t.Errorf("goroutine_ids %v (%q), suspects %+v", rep.GoroutineIDs, rep.GoroutineIDsOff, rep.Suspects)
	}
}

func TestWatchUnreachableTarget(t *testing.T) {
	t.Parallel()
	out, errOut, code := leaklabIn(t, t.TempDir(), "watch", "http://127.0.0.1:1", "--for", "2s", "--every", "1s")
	if code != 1 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line naming the target", code, out, errOut)
	}
	_, errOut, code = leaklabIn(t, t.TempDir(), "watch", "http://127.0.0.1:1", "--for", "1s", "--every", "2s")
	if code != 2 {
		t.Errorf("--for shorter than --every: exit %d (%s), want 2", code, errOut)
	}
}

// A target that dies mid-watch: the report says what was seen and that the
// watch ended early.
func TestWatchTargetDies(t *testing.T) {
	t.Parallel()
	proc := testbin.StartService(t, "unbounded-cache", true)
	home := t.TempDir()
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := leaklabIn(t, home, "watch", proc.URL, "--for", "30s", "--every", "1s")
		done <- result{out, errOut, code}
	}()
	// Kill the target once the watch has stored a few snapshots.
	store, err := profiles.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	testbin.WaitFor(t, 30*time.Second, "three stored profiles", func() bool {
		stored, _ := store.List(profiles.Filter{})
		return len(stored) >= 3
	})
	proc.Kill()
	r := <-done
	out, errOut, code := r.out, r.errOut, r.code
	if code == 0 || !strings.Contains(out, "The watch ended early: the target stopped answering") || !strings.Contains(errOut, "ended early") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// The HTML report renders in headless Chromium, every suspect's chart is
// drawn, and the console stays clean.
func TestWatchHTMLInChromium(t *testing.T) {
	t.Parallel()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("LEAKLAB_CI") != "" {
			t.Fatal("chromium is required in CI (.ci/run installs it)")
		}
		t.Skip("SKIPPED: chromium is not installed (apt-get install chromium); the HTML report is not checked in a browser")
	}
	// The recorded heap-leak watch, judged again from the store: the
	// report is what a live watch writes (one path after the watch), and
	// the point here is the page in a browser.
	home := t.TempDir()
	target := copyRecordedWatch(t, "heapleak", home)
	page := filepath.Join(t.TempDir(), "report.html")
	if _, errOut, code := leaklabIn(t, home, "watch", target, "--from-store", "--html", page); code != 3 {
		t.Fatalf("watch exit %d: %s", code, errOut)
	}
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--enable-logging=stderr", "--v=0", "--dump-dom", "file://"+page)
	var dom, logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &dom, &logs
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, logs.String())
	}
	suspects := strings.Count(dom.String(), `class="suspect"`)
	charts := regexp.MustCompile(`<polyline class="series"[^>]* points="[0-9.]+,[0-9.]+ [^"]+"`).FindAllString(dom.String(), -1)
	if suspects == 0 || len(charts) != suspects {
		t.Errorf("%d suspects, %d drawn charts in the rendered DOM", suspects, len(charts))
	}
	if m := regexp.MustCompile(`(?m)^.*(CONSOLE|Uncaught|ERROR:.*file://).*$`).FindString(logs.String()); m != "" {
		t.Errorf("console error: %s", m)
	}
}

// The demo's watch rests on the goroutines that a service under load
// leaves behind, in the test's own process: on a starved machine (the race
// detector beside other packages' tests) one 16-second demo in CI saw too
// few of them. So the first demo watches 8 s at a snapshot a second (the
// culprit named in 10 of 10 race-built demos, five at once), and a miss
// gets one more demo of 16 s at 2 s (as the catalog's watches get a second
// look), so the test fails on a broken demo, not on one starved run. (With
// the race detector and a load average of 25, both 8-second demos of one
// run missed.)
func TestDemo(t *testing.T) {
	t.Parallel()
	svc, _ := leaks.Lookup(demoService)
	var suspects any
	for attempt, look := range [][2]string{{"8s", "1s"}, {"16s", "2s"}} {
		out, errOut, code := leaklabIn(t, t.TempDir(), "demo", "--for", look[0], "--every", look[1], "--output", "json")
		var rep watchJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
			t.Fatalf("exit %d, %v\nstdout: %s\nstderr: %s", code, err, out, errOut)
		}
		for _, s := range rep.Suspects {
			if s.Function == svc.Culprit {
				return
			}
		}
		t.Logf("demo %d (%s) did not name %s: %+v", attempt+1, look[0], svc.Culprit, rep.Suspects)
		suspects = rep.Suspects
	}
	t.Errorf("two demos did not name %s: %+v", svc.Culprit, suspects)
}

func TestExerciseFlow(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	const name = "unbounded-cache"
	for i := 1; i <= 4; i++ {
		out, _, code := leaklabIn(t, home, "exercise", "hint", name)
		if code != 0 || !strings.Contains(out, "Hint "+string(rune('0'+min(i, 3)))+"/3") {
			t.Errorf("hint %d: exit %d: %s", i, code, out)
		}
	}
	url := testbin.StartService(t, name, false).URL
	steadyLoad(t, url, name)
	// A 12 s watch of a heap leak rests on a dozen sampled allocations;
	// on a starved machine one can miss it, so a miss gets one longer
	// look (as TestDemo and the catalog's watches do): the test fails on
	// a broken check, not on one unlucky draw.
	for _, dur := range []string{"12s", "24s"} {
		out, _, code := leaklabIn(t, home, "exercise", "check", name, "--url", url, "--for", dur, "--answer", "(*pageCache).lookup", "--output", "json")
		var rep struct {
			LeakStillThere bool `json:"leak_still_there"`
			Correct        bool `json:"correct"`
		}
		err := json.Unmarshal([]byte(out), &rep)
		if err == nil && code == 0 && !rep.LeakStillThere && !rep.Correct && dur == "12s" {
			t.Logf("the %s watch missed the leak; one longer look", dur)
			continue
		}
		if err != nil || code != 3 || !rep.LeakStillThere || rep.Correct {
			t.Errorf("wrong answer: exit %d, %+v, %v: %s", code, rep, err, out)
		}
		break
	}
	out, _, _ := leaklabIn(t, home, "exercise", "check", name, "--url", url, "--for", "2s", "--answer", "pageCache.render")
	if !strings.Contains(out, "Correct: github.com/leaklab/leaklab/leaks.(*pageCache).render") {
		t.Errorf("right answer: %s", out)
	}
	out, _, _ = leaklabIn(t, home, "exercise", "list")
	if !regexp.MustCompile(`(?m)^unbounded-cache\s+heap\s+solved\s+3/3`).MatchString(out) {
		t.Errorf("progress not remembered:\n%s", out)
	}
	out, _, code := leaklabIn(t, home, "exercise", "solution", name)
	if code != 0 || !strings.Contains(out, "func (c *pageCache) render(id string) []byte") || !strings.Contains(out, "leaklab run unbounded-cache --fixed") {
		t.Errorf("solution: exit %d:\n%s", code, out)
	}
}

// shellWords splits a suggested command line as a POSIX shell would, for
// the quoting the suggestions use: spaces between words, 'single quotes'.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var word strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, word.String())
				word.Reset()
			}
			inWord = false
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", line)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// 'exercise start --output json' says where the service runs as JSON, with
// no prose on stdout, and runs it until cancelled.
func TestExerciseStartJSON(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut testbin.SyncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- runIn(ctx, &factory{streams: &ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, home: home},
			[]string{"exercise", "start", "unbounded-cache", "--addr", "127.0.0.1:0", "--load-for", "1s", "--output", "json"})
	}()
	var started struct {
		Name           string  `json:"name"`
		URL            string  `json:"url"`
		Rate           float64 `json:"rate"`
		LoadForSeconds float64 `json:"load_for_seconds"`
	}
	testbin.WaitFor(t, 30*time.Second, "the start report on stdout", func() bool {
		return json.Unmarshal([]byte(out.String()), &started) == nil
	})
	if started.Name != "unbounded-cache" || !strings.HasPrefix(started.URL, "http://127.0.0.1:") || started.Rate <= 0 || started.LoadForSeconds != 1 {
		t.Errorf("start report %+v", started)
	}
	resp, err := http.Get(started.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %s", resp.Status)
	}
	var list []struct{ Name, Status string }
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "exercise", "list", "--output", "json")), &list); err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if e.Name == "unbounded-cache" && e.Status != "started" {
			t.Errorf("status %q while it runs, want started", e.Status)
		}
	}
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d after cancel; stderr: %s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("exercise start did not stop when cancelled")
	}
	var again map[string]any
	if err := json.Unmarshal([]byte(out.String()), &again); err != nil {
		t.Errorf("stdout is not one JSON report: %v\n%s", err, out.String())
	}
}
