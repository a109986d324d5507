package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/testbin"
)

// capture → profiles ls → diff → show → rm → prune against a real leaky
// service, checking the JSON contracts.
func TestCaptureListDiffHeapEndToEnd(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	svc := testbin.StartService(t, "unbounded-cache", false)

	var first map[string]any
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "capture", svc.URL, "--output", "json")), &first); err != nil {
		t.Fatal(err)
	}
	drive(t, svc.URL, "/product?id=%d", 400) // 12.5 MiB; heap profiles are sampled
	second := mustLeaklab(t, home, "capture", svc.URL+"/debug/pprof/heap")
	if !strings.Contains(second, "heap profile of "+svc.URL+" (unbounded-cache)") {
		t.Errorf("capture text: %q", second)
	}

	var entries []map[string]any
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "profiles", "ls", "--output", "json")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d stored profiles, want 2", len(entries))
	}
	for _, e := range entries {
		for _, f := range []string{"id", "target", "type", "time"} {
			if _, ok := e[f]; !ok {
				t.Errorf("ls entry lacks %q: %v", f, e)
			}
		}
		if _, err := time.Parse(time.RFC3339, e["time"].(string)); err != nil {
			t.Errorf("time %v is not RFC 3339", e["time"])
		}
		if e["target"] != svc.URL || e["type"] != "heap" {
			t.Errorf("entry %v", e)
		}
	}
	if entries[0]["id"] != first["id"] || entries[0]["time"].(string) > entries[1]["time"].(string) {
		t.Errorf("ls is not newest last: %v", entries)
	}
	baseID, curID := entries[0]["id"].(string), entries[1]["id"].(string)

	var rep struct {
		SampleType string `json:"sample_type"`
		Unit       string `json:"unit"`
		Rows       []struct {
			Function             string
			Base, Current, Delta int64
			DeltaCum             int64 `json:"delta_cum"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "diff", baseID, curID, "--output", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	const culprit = "github.com/leaklab/leaklab/leaks.(*pageCache).render"
	if rep.SampleType != "inuse_space" || rep.Unit != "bytes" || len(rep.Rows) == 0 {
		t.Fatalf("diff report %+v", rep)
	}
	if r := rep.Rows[0]; r.Function != culprit || r.Delta != r.Current-r.Base || r.Delta < 4<<20 {
		t.Errorf("top row %+v, want %s growing by ≥4 MiB", r, culprit)
	}
	for i := 1; i < len(rep.Rows); i++ {
		if rep.Rows[i].Delta > rep.Rows[i-1].Delta {
			t.Errorf("rows not sorted by delta: %d after %d", rep.Rows[i].Delta, rep.Rows[i-1].Delta)
		}
	}
	// The same two captures named by target and age: the one closest to an
	// hour ago is the older, @0s the newest; the same diff.
	byIDs := rep
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "diff", svc.URL+"@1h", strings.TrimPrefix(svc.URL, "http://")+"@0s", "--output", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != len(byIDs.Rows) || rep.Rows[0] != byIDs.Rows[0] {
		t.Errorf("diff by TARGET@AGO differs from the diff by IDs: top row %+v, want %+v", rep.Rows[0], byIDs.Rows[0])
	}

	// Against the live service, written for go tool pprof.
	out := filepath.Join(t.TempDir(), "diff.pb.gz")
	text := mustLeaklab(t, home, "diff", baseID[:len(baseID)-2], svc.URL, "-o", out, "--top", "3")
	if !strings.Contains(text, culprit) || !strings.Contains(text, "(3 of ") {
		t.Errorf("diff text:\n%s", text)
	}
	pp, err := exec.Command("go", "tool", "pprof", "-top", out).CombinedOutput()
	if err != nil || !strings.Contains(string(pp), culprit) {
		t.Errorf("go tool pprof -top on -o output: %v\n%s", err, pp)
	}

	show := mustLeaklab(t, home, "profiles", "show", curID)
	for _, want := range []string{"id:       " + curID, "service:  unbounded-cache", "inuse_space (bytes)", culprit} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	mustLeaklab(t, home, "profiles", "rm", baseID)
	if got := mustLeaklab(t, home, "profiles", "ls", "--type", "heap"); strings.Contains(got, baseID) || !strings.Contains(got, curID) {
		t.Errorf("after rm:\n%s", got)
	}
	if _, errOut, code := leaklabIn(t, home, "profiles", "prune"); code != 2 || !strings.Contains(errOut, "--older-than") {
		t.Errorf("prune without a bound: exit %d, %s", code, errOut)
	}
	mustLeaklab(t, home, "profiles", "prune", "--older-than", "1d")
	mustLeaklab(t, home, "profiles", "prune", "--all")
	if files := storeFiles(t, home); len(files) != 0 {
		t.Errorf("store not empty after prune --all: %v", files)
	}
}

// The goroutine leak of abandoned-worker is one leak-site row: parked in
// chan send at the worker.
func TestDiffGoroutineLeakSiteEndToEnd(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	svc := testbin.StartService(t, "abandoned-worker", false)
	base := filepath.Join(t.TempDir(), "before.pb.gz")
	mustLeaklab(t, home, "capture", svc.URL, "--type", "goroutine", "--out", base)
	drive(t, svc.URL, "/search?q=item-%d", 120)
	text := mustLeaklab(t, home, "diff", base, svc.URL)
	if !regexp.MustCompile(`\+1[0-9]{2} goroutines in chan send at leaks\.\(\*searchService\)\.backend`).MatchString(text) {
		t.Errorf("no leak-site line for the abandoned workers:\n%s", text)
	}
	var rep struct {
		LeakSites []struct {
			Function  string `json:"function"`
			WaitState string `json:"wait_state"`
			Delta     int64  `json:"delta"`
		} `json:"leak_sites"`
		OwnCode struct {
			Modules []string `json:"modules"`
		} `json:"own_code"`
	}
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "diff", base, svc.URL, "--by", "stack", "--output", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.LeakSites) == 0 || rep.LeakSites[0].WaitState != "chan send" || rep.LeakSites[0].Delta < 100 {
		t.Errorf("leak sites %+v", rep.LeakSites)
	}
	// The URL side's go_build_info names the module whose frames are own code.
	if fmt.Sprint(rep.OwnCode.Modules) != "[github.com/leaklab/leaklab]" {
		t.Errorf("own code %v, want the module from the service's go_build_info", rep.OwnCode.Modules)
	}
	rep.OwnCode.Modules = nil
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "diff", base, svc.URL, "--own", "example.com/other", "--output", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.OwnCode.Modules) != "[example.com/other]" {
		t.Errorf("own code %v, want --own's", rep.OwnCode.Modules)
	}
	// A heap capture diffed against this goroutine profile is refused.
	_, errOut, code := leaklabIn(t, home, "diff", base, svc.URL, "--type", "heap")
	if code != 1 || !strings.Contains(errOut, "cannot diff a heap profile against a goroutine profile") {
		t.Errorf("mismatched types: exit %d, %s", code, errOut)
	}
}

// Every broken target gives one line naming it and the problem, exit 1,
// and no change to the store.
func TestCaptureBadTargetsEndToEnd(t *testing.T) {
	t.Parallel()
	valid, err := os.ReadFile(filepath.Join("..", "..", "profiles", "testdata", "heap-current.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	bomb := testbin.GzipBomb(64 << 20)
	// A real heap profile whose first stack repeats one frame 20,000 times.
	deep, err := profile.ParseData(valid)
	if err != nil {
		t.Fatal(err)
	}
	for range 20000 {
		deep.Sample[0].Location = append(deep.Sample[0].Location, deep.Sample[0].Location[0])
	}
	var deepBytes bytes.Buffer
	if err := deep.Write(&deepBytes); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/notfound/", http.NotFound)
	mux.HandleFunc("/error/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/html/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html><body>sign in</body></html>")
	})
	mux.HandleFunc("/json/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"ok":true}`) })
	mux.HandleFunc("/empty/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/truncated/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { w.Write(valid[:len(valid)/2]) })
	mux.HandleFunc("/bomb/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { w.Write(bomb) })
	mux.HandleFunc("/deep/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { w.Write(deepBytes.Bytes()) })
	mux.HandleFunc("/loop/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.String(), http.StatusFound)
	})
	mux.HandleFunc("/slow/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	refused := "http://" + testbin.FreeAddr(t)

	cases := []struct {
		target string
		args   []string
		want   string
	}{
		{refused, nil, "connection refused"},
		{"http://leaklab-no-such-host.invalid:8080", nil, "cannot resolve host"},
		{srv.URL + "/notfound", nil, "HTTP 404"},
		{srv.URL + "/error", nil, "HTTP 500 Internal Server Error: boom"},
		{srv.URL + "/html", nil, "an HTML page"},
		{srv.URL + "/json", nil, "JSON"},
		{srv.URL + "/empty", nil, "(empty)"},
		{srv.URL + "/truncated", nil, "truncated gzip"},
		{srv.URL + "/bomb", nil, "gzip bomb"},
		{srv.URL + "/deep", nil, "a stack deeper than 16384 frames"},
		{srv.URL + "/loop", nil, "redirect loop"},
		{srv.URL + "/slow", []string{"--timeout", "1s"}, "no complete answer within 1s"},
	}
	home := t.TempDir()
	for _, tc := range cases {
		for _, out := range []string{"", filepath.Join(t.TempDir(), "p.pb.gz")} {
			args := append([]string{"capture", tc.target}, tc.args...)
			if out != "" {
				args = append(args, "--out", out)
			}
			_, errOut, code := leaklabIn(t, home, args...)
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "leaklab: "+tc.target) || !strings.Contains(lines[0], tc.want) {
				t.Errorf("capture %s: exit %d, stderr %q; want exit 1 and one line naming the target and %q", tc.target, code, errOut, tc.want)
			}
			if out != "" {
				if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("capture %s --out left a file: %v", tc.target, err)
				}
				if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*")); len(left) != 0 {
					t.Errorf("capture %s --out left %v", tc.target, left)
				}
			}
		}
	}
	if files := storeFiles(t, home); len(files) != 0 {
		t.Errorf("failed captures changed the store: %v", files)
	}

	// Bad files and IDs given to diff.
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.pb.gz")
	os.WriteFile(truncated, valid[:len(valid)/2], 0o644)
	good := filepath.Join(dir, "good.pb.gz")
	os.WriteFile(good, valid, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"diff", good, truncated}, truncated + ": not a pprof profile (truncated gzip)"},
		{[]string{"diff", "nosuchid", good}, "nosuchid: no such file, URL or stored profile"},
		{[]string{"diff", good, good, "--sample-index", "bogus"}, `no sample type "bogus"`},
	} {
		_, errOut, code := leaklabIn(t, home, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", tc.args, code, errOut, tc.want)
		}
	}
	for _, args := range [][]string{
		{"diff", good},
		{"diff", good, good, "--by", "module"},
		{"capture", srv.URL, "--type", "threads"},
		{"capture", srv.URL, "--label", "novalue"},
		{"capture", srv.URL, "--type", "all", "--out", "x"},
	} {
		if _, errOut, code := leaklabIn(t, home, args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errOut)
		}
	}
}

// A capture killed while it waits for the target leaves nothing behind:
// the real binary, killed with SIGKILL.
func TestKilledCaptureLeavesNothing(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	svc := testbin.StartService(t, "unbounded-cache", false)
	cmd := exec.Command(testbin.Build(t), "capture", svc.URL, "--type", "cpu", "--seconds", "30")
	cmd.Env = append(os.Environ(), "LEAKLAB_HOME="+home)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The store directory appears before the fetch starts; kill then.
	testbin.WaitFor(t, 20*time.Second, "the store directory", func() bool {
		_, err := os.Stat(filepath.Join(home, "profiles"))
		return err == nil
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if files := storeFiles(t, home); len(files) != 0 {
		t.Errorf("a killed capture left %v", files)
	}
	out := mustLeaklab(t, home, "profiles", "ls")
	if !strings.Contains(out, "no stored profiles") {
		t.Errorf("ls after a killed capture:\n%s", out)
	}
}

// --http serves pprof's own web UI on the diff, on loopback.
func TestDiffHTTPServesPprofUI(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "profiles", "testdata")
	cmd := exec.Command(testbin.Build(t), "diff", filepath.Join(dir, "heap-base.pb.gz"), filepath.Join(dir, "heap-current.pb.gz"), "--http", ":0")
	cmd.Env = append(os.Environ(), "LEAKLAB_HOME="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`at (http://\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	var u string
	select {
	case u = <-urls:
	case <-time.After(30 * time.Second):
		t.Fatal("no web UI address on stderr")
	}
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("web UI at %s, want loopback", u)
	}
	for _, page := range []string{"top", "flamegraph", ""} {
		resp, err := http.Get(u + page)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "pageCache") {
			t.Errorf("%s: %s, body without the culprit (%d bytes)", page, resp.Status, len(body))
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if !strings.Contains(stdout.String(), "inuse_space") {
		t.Errorf("no report before serving:\n%s", stdout.String())
	}
}

// --type all saves every type the target offers and says which it skipped.
func TestCaptureAllTypes(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	svc := testbin.StartService(t, "global-mutex", false)
	var reps []struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Seconds int    `json:"seconds"`
		Skipped string `json:"skipped"`
		Error   string `json:"error"`
	}
	out := mustLeaklab(t, home, "capture", svc.URL, "--type", "all", "--seconds", "1", "--output", "json")
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]string{}
	for _, r := range reps {
		switch {
		case r.Skipped != "":
			got[r.Type] = "skipped"
		case r.Error != "":
			got[r.Type] = "error: " + r.Error
		default:
			got[r.Type] = "saved"
			if r.Type == "cpu" && r.Seconds != 1 {
				t.Errorf("cpu profile of %d seconds, want 1", r.Seconds)
			}
		}
	}
	want := map[string]string{"heap": "saved", "allocs": "saved", "goroutine": "saved", "goroutineleak": "skipped", "mutex": "saved", "block": "saved", "cpu": "saved"}
	for typ, w := range want {
		if got[typ] != w {
			t.Errorf("%s: %s, want %s", typ, got[typ], w)
		}
	}
	var entries []map[string]any
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "profiles", "ls", "--output", "json")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 6 {
		t.Errorf("%d stored profiles, want 6", len(entries))
	}
}

// Captures running at the same time, as separate processes of the real
// binary, all land in the store intact.
func TestConcurrentCaptureProcesses(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	svc := testbin.StartService(t, "unbounded-cache", false)
	const n = 6
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		typ := []string{"heap", "goroutine", "allocs"}[i%3]
		cmds[i] = exec.Command(testbin.Build(t), "capture", svc.URL, "--type", typ)
		cmds[i].Env = append(os.Environ(), "LEAKLAB_HOME="+home)
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("a concurrent capture failed: %v", err)
		}
	}
	var entries []struct{ ID string }
	if err := json.Unmarshal([]byte(mustLeaklab(t, home, "profiles", "ls", "--output", "json")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Fatalf("%d stored profiles after %d concurrent captures", len(entries), n)
	}
	for _, e := range entries {
		mustLeaklab(t, home, "profiles", "show", e.ID)
	}
	if files := storeFiles(t, home); len(files) != 2*n {
		t.Errorf("store holds %v, want %d profiles and their metadata only", files, n)
	}
}
