package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
	"github.com/leaklab/leaklab/leaks"
	"github.com/leaklab/leaklab/profiles"
)

const (
	lessonDir  = "../../leaks/escapes"
	fixtureDir = "../../profiles/escape/testdata/fixture"
)

// escapeIn runs 'leaklab escape -C dir ARGS' in process, with a home of
// its own, and returns stdout, stderr and the exit code.
func escapeIn(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return leaklabIn(t, t.TempDir(), append([]string{"escape", "-C", dir}, args...)...)
}

func TestEscapeJSONContract(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := escapeIn(t, lessonDir, "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var report struct {
		Findings []map[string]json.RawMessage `json:"findings"`
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if len(report.Findings) == 0 {
		t.Fatal("no findings for the lesson package")
	}
	kinds := map[string]bool{}
	sawNewPointPtr := false
	for _, f := range report.Findings {
		for _, field := range []string{"file", "line", "column", "function", "kind", "message", "flow"} {
			if _, ok := f[field]; !ok {
				t.Fatalf("finding %v lacks %q", f, field)
			}
		}
		var kind, fn, msg string
		json.Unmarshal(f["kind"], &kind)
		json.Unmarshal(f["function"], &fn)
		json.Unmarshal(f["message"], &msg)
		kinds[kind] = true
		var flow []struct {
			To, From string
			Steps    []struct{ Expr, Reason string }
		}
		if err := json.Unmarshal(f["flow"], &flow); err != nil {
			t.Fatalf("flow of %s is not a list of edges: %v", msg, err)
		}
		if fn == "NewPointPtr" && msg == "moved to heap: p" {
			sawNewPointPtr = true
			if len(flow) == 0 || flow[0].To != "~r0" || len(flow[0].Steps) == 0 {
				t.Errorf("NewPointPtr's flow = %+v, want an edge into ~r0 with steps", flow)
			}
		}
	}
	for k := range kinds {
		switch k {
		case "moved-to-heap", "escapes", "leaking-param", "does-not-escape":
		default:
			t.Errorf("unknown kind %q", k)
		}
	}
	if len(kinds) != 4 || !sawNewPointPtr {
		t.Errorf("kinds %v (want all four), NewPointPtr's escape seen: %v", kinds, sawNewPointPtr)
	}
}

func TestEscapeTextGroupsByFunction(t *testing.T) {
	t.Parallel()
	streams, out, errOut := testStreams()
	code := run([]string{"escape", "-C", lessonDir, "--kind", "moved-to-heap,escapes", "--func", "^(NewPointPtr|LabelSprintf)$"}, streams)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := []string{
		"leaks/escapes/escapes.go\n  NewPointPtr\n    31:2  moved to heap: p\n",
		"flow: ~r0 ← &p: from &p (address-of) at 32:9, from return &p (return) at 32:2\n",
		"→ its address is returned",
		"  LabelSprintf\n",
		"id escapes to heap",
		"2 findings in 2 functions: 1 moved to heap, 1 escape",
	}
	text := strings.ReplaceAll(out.String(), "\r", "")
	for _, w := range want {
		// The lesson file's lines are fixed by the test's expectations;
		// if the lesson is edited, these move with it.
		if !strings.Contains(text, strings.TrimPrefix(w, "leaks/escapes/")) {
			t.Errorf("output lacks %q:\n%s", w, text)
		}
	}
}

func TestEscapeExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dir     string
		args    []string
		code    int
		stderr  string // in the one-line error
		stdout  string // in the report
		noWrite bool   // stdout must be empty
	}{
		{"clean package", lessonDir, []string{"escape", "."}, exitOK, "", "NewPointPtr", false},
		{"broken package beside good ones", fixtureDir, []string{"escape"}, exitFailure, "example.com/fixture/broken did not build: broken/broken.go:5:23: undefined: undefinedThing", "NewT", false},
		{"unknown package", fixtureDir, []string{"escape", "./a", "./nosuchdir"}, exitFailure, "nosuchdir", "NewT", false},
		{"bad kind", lessonDir, []string{"escape", "--kind", "heap"}, exitUsage, `unknown kind "heap"`, "", true},
		{"bad regexp", lessonDir, []string{"escape", "--func", "("}, exitUsage, "--func", "", true},
		{"pattern in gcflags", lessonDir, []string{"escape", "--gcflags", "all=-l"}, exitUsage, "without a package pattern", "", true},
		{"missing profile", lessonDir, []string{"escape", "--profile", "no-such.pprof"}, exitFailure, "no-such.pprof", "", true},
		{"unknown base", lessonDir, []string{"escape", "--base", "no-such-ref-xyz"}, exitFailure, "no-such-ref-xyz", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := escapeIn(t, tt.dir, tt.args[1:]...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tt.code, stderr)
			}
			if tt.stderr != "" {
				if !strings.Contains(stderr, tt.stderr) {
					t.Errorf("stderr %q lacks %q", stderr, tt.stderr)
				}
				if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
					t.Errorf("want a one-line error, got:\n%s", stderr)
				}
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout)
			}
			if tt.noWrite && stdout != "" {
				t.Errorf("want no report, got:\n%s", stdout)
			}
		})
	}
}

// --file names the file however the user has it at hand: absolutely, or
// from the current directory when -C analyses another one. The real
// binary, run in different working directories.
func TestEscapeFileAbsoluteOrFromCurrentDir(t *testing.T) {
	t.Parallel()
	abs, err := filepath.Abs(filepath.Join(lessonDir, "escapes.go"))
	if err != nil {
		t.Fatal(err)
	}
	findings := func(dir string, args ...string) []string {
		t.Helper()
		stdout, stderr, code := leaklabBinary(t, dir, nil, append([]string{"escape", "--kind", "moved-to-heap", "--output", "json"}, args...)...)
		if code != exitOK {
			t.Fatalf("escape %v: exit %d: %s", args, code, stderr)
		}
		var r struct {
			Findings []struct{ File, Function, Message string }
		}
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("escape %v: %v\n%s", args, err, stdout)
		}
		var out []string
		for _, x := range r.Findings {
			out = append(out, x.File+" "+x.Function+": "+x.Message)
		}
		return out
	}
	want := findings(lessonDir, "--file", "escapes.go")
	if len(want) == 0 {
		t.Fatal("--file escapes.go: no findings in the lesson file")
	}
	for _, tc := range []struct {
		dir  string
		args []string
	}{
		{lessonDir, []string{"--file", abs}},
		{"../..", []string{"-C", "leaks/escapes", "--file", abs}},
		{"../..", []string{"-C", "leaks/escapes", "--file", "leaks/escapes/escapes.go"}},
		{"../..", []string{"-C", "leaks/escapes", "--file", "./leaks/escapes/escapes.go"}},
	} {
		if got := findings(tc.dir, tc.args...); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("in %s, escape %v found\n%s\nwant\n%s", tc.dir, tc.args, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// gitRepo copies the fixture's a and b packages into a new repository with
// one commit, and returns its directory.
func gitRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("LEAKLAB_CI") == "1" {
			t.Fatal("git is not installed; --base needs it")
		}
		t.Skip("SKIPPED: git is not installed, so --base cannot be tested here")
	}
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "a/a.go", "b/b.go"} {
		data, err := os.ReadFile(filepath.Join(fixtureDir, f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "-q"},
		{"add", "."},
		{"-c", "user.name=leaklab test", "-c", "user.email=test@leaklab.invalid", "commit", "-q", "-m", "base"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

func TestEscapeBase(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t)
	file := filepath.Join(dir, "a", "a.go")
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Moving every line down must not count as a change.
	shifted := strings.Replace(string(orig), "import (", "// A comment that moves every line.\n\n// And another.\nimport (", 1)
	if err := os.WriteFile(file, []byte(shifted), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := escapeIn(t, dir, "--base", "HEAD", "--output", "json")
	if code != exitOK {
		t.Fatalf("lines moved: exit %d, want 0\n%s\n%s", code, stdout, stderr)
	}
	var cmp struct {
		Base       string
		Findings   []json.RawMessage
		Introduced []struct{ Function, Kind, Message string }
		Removed    []struct{ Function, Kind, Message string }
	}
	if err := json.Unmarshal([]byte(stdout), &cmp); err != nil {
		t.Fatal(err)
	}
	if cmp.Base != "HEAD" || len(cmp.Introduced) != 0 || len(cmp.Removed) != 0 || len(cmp.Findings) == 0 {
		t.Fatalf("lines moved: %+v, want no change and the current findings", cmp)
	}

	// A new escape is reported and fails the gate; removing one is reported.
	changed := strings.Replace(shifted, "func Box(x T) any {\n\treturn x // escape: escapes\n}\n", "", 1) +
		"\n// Leak is new.\nfunc Leak() *T {\n\tt := T{}\n\treturn &t\n}\n"
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = escapeIn(t, dir, "--base", "HEAD", "--output", "json")
	if code != exitFound {
		t.Fatalf("new escape: exit %d, want %d\n%s\n%s", code, exitFound, stdout, stderr)
	}
	cmp.Introduced, cmp.Removed = nil, nil
	if err := json.Unmarshal([]byte(stdout), &cmp); err != nil {
		t.Fatal(err)
	}
	if len(cmp.Introduced) != 1 || cmp.Introduced[0].Function != "Leak" || cmp.Introduced[0].Message != "moved to heap: t" {
		t.Errorf("introduced %+v, want Leak's moved to heap: t", cmp.Introduced)
	}
	if len(cmp.Removed) != 1 || cmp.Removed[0].Function != "Box" {
		t.Errorf("removed %+v, want Box's escape", cmp.Removed)
	}
	// The text form says the same, and the worktree is gone afterwards.
	stdout, _, _ = escapeIn(t, dir, "--base", "HEAD")
	if !strings.Contains(stdout, "Compared with HEAD: 1 introduced (1 heap escapes), 1 removed.") {
		t.Errorf("text report:\n%s", stdout)
	}
	out, err := exec.Command("git", "-C", dir, "worktree", "list").Output()
	if err != nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Errorf("worktrees left behind: %s (%v)", out, err)
	}
}

// A package that did not build at the base is named, on stderr and in the
// JSON, and its escapes are not counted as introduced; the other packages
// are still compared.
func TestEscapeBaseThatDidNotBuild(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=leaklab test", "-c", "user.email=test@leaklab.invalid"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	bFile := filepath.Join(dir, "b", "b.go")
	good, err := os.ReadFile(bFile)
	if err != nil {
		t.Fatal(err)
	}
	// The base has b broken; the working tree has it fixed again.
	if err := os.WriteFile(bFile, []byte(strings.Replace(string(good), "return make([]byte, n)", "return make([]byte, undefinedThing)", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	git("commit", "-q", "-am", "break b")
	if err := os.WriteFile(bFile, good, 0o644); err != nil {
		t.Fatal(err)
	}

	type report struct {
		Introduced   []struct{ Function, Package string }
		BaseFailures []struct{ Package, Output string } `json:"base_failures"`
	}
	check := func(stdout, stderr string) report {
		t.Helper()
		var r report
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, stdout)
		}
		if len(r.BaseFailures) != 1 || r.BaseFailures[0].Package != "example.com/fixture/b" || !strings.Contains(r.BaseFailures[0].Output, "undefinedThing") {
			t.Errorf("base_failures %+v, want example.com/fixture/b with the compiler's message", r.BaseFailures)
		}
		if want := "leaklab: warning: example.com/fixture/b did not build at HEAD, so its escapes were not compared\n"; !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
		for _, x := range r.Introduced {
			if x.Package == "example.com/fixture/b" {
				t.Errorf("b's %s counted as introduced although b did not build at the base", x.Function)
			}
		}
		return r
	}
	stdout, stderr, code := escapeIn(t, dir, "--base", "HEAD", "--output", "json")
	if code != exitOK {
		t.Fatalf("only b, broken at the base, has escapes: exit %d, want 0\n%s\n%s", code, stdout, stderr)
	}
	if r := check(stdout, stderr); len(r.Introduced) != 0 {
		t.Errorf("introduced %+v, want none", r.Introduced)
	}
	stdout, _, _ = escapeIn(t, dir, "--base", "HEAD")
	if !strings.Contains(stdout, "Compared with HEAD: 0 introduced (0 heap escapes), 0 removed.") ||
		!strings.Contains(stdout, "did not build at HEAD, so not compared:\n  example.com/fixture/b\n") {
		t.Errorf("text report:\n%s", stdout)
	}

	// A new escape in a, which built at the base, still fails the gate.
	aFile := filepath.Join(dir, "a", "a.go")
	a, err := os.ReadFile(aFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(aFile, append(a, "\n// Leak is new.\nfunc Leak() *T {\n\tt := T{}\n\treturn &t\n}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = escapeIn(t, dir, "--base", "HEAD", "--output", "json")
	if code != exitFound {
		t.Fatalf("new escape in a: exit %d, want %d\n%s\n%s", code, exitFound, stdout, stderr)
	}
	if r := check(stdout, stderr); len(r.Introduced) != 1 || r.Introduced[0].Function != "Leak" {
		t.Errorf("introduced %+v, want Leak's alone", r.Introduced)
	}
}

func TestEscapeProfile(t *testing.T) {
	t.Parallel()
	prof := filepath.Join(t.TempDir(), "mem.pprof")
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "Closure_Captured|Interface_Boxed", "-benchtime", "1000x",
		"-memprofile", prof, "-memprofilerate", "1", "-o", filepath.Join(t.TempDir(), "escapes.test"), ".")
	cmd.Dir = lessonDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -memprofile: %v\n%s", err, out)
	}
	stdout, stderr, code := escapeIn(t, lessonDir, "--profile", prof, "--kind", "moved-to-heap,escapes", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Pricing struct {
			Ranked []struct {
				Function, Message string
				Cost              struct {
					AllocBytes   int64 `json:"alloc_bytes"`
					AllocObjects int64 `json:"alloc_objects"`
				} `json:"cost"`
			}
			TotalBytes int64 `json:"total_bytes"`
		}
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	ranked := map[string]bool{}
	for _, x := range r.Pricing.Ranked {
		ranked[x.Function+": "+x.Message] = true
		if x.Cost.AllocBytes <= 0 {
			t.Errorf("ranked %s with no bytes", x.Function)
		}
	}
	for _, want := range []string{"MakeCounter: moved to heap: n", "MakeCounter.func1: func literal escapes to heap", "AppendBoxed: p escapes to heap"} {
		if !ranked[want] {
			t.Errorf("ranking lacks %q: %v", want, ranked)
		}
	}
	if ranked["NewPointPtr: moved to heap: p"] {
		t.Error("NewPointPtr did not run in the profiled benchmarks but is ranked")
	}
	stdout, _, _ = escapeIn(t, lessonDir, "--profile", prof, "--kind", "moved-to-heap")
	if !strings.Contains(stdout, "Priced with "+prof) || !strings.Contains(stdout, "MakeCounter  moved to heap: n") {
		t.Errorf("text report:\n%s", stdout)
	}

	// The same profile by its ID in the profile store.
	home := t.TempDir()
	store, err := profiles.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	c, err := profiles.ReadFile(prof, profiles.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := store.Save(c)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := leaklabIn(t, home, "escape", "-C", lessonDir, "--profile", meta.ID, "--kind", "moved-to-heap")
	if code != 0 || !strings.Contains(out, "Priced with "+meta.ID) || !strings.Contains(out, "MakeCounter  moved to heap: n") {
		t.Errorf("--profile %s from the store: exit %d\n%s\n%s", meta.ID, code, out, errOut)
	}
}

// The priced view against a live sample service: the escaping-hot-path
// service allocates in (*statsService).summarize, and after driving it the
// allocs profile fetched over HTTP ranks summarize's escapes.
func TestEscapeProfileFromLiveService(t *testing.T) {
	t.Parallel()
	svc := testbin.StartService(t, "escaping-hot-path", false)
	spec, err := leaks.Lookup("escaping-hot-path")
	if err != nil {
		t.Fatal(err)
	}
	ep := spec.Endpoints[0]
	// Enough garbage for the runtime's default sampling (one sample per
	// 512 KiB) to see summarize many times; bounded in count.
	const requests, workers = 3000, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < requests; i += workers {
				req, err := ep.Request(svc.URL, i)
				if err != nil {
					errs <- err
					return
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	stdout, stderr, code := escapeIn(t, "../..", "./leaks", "--profile", svc.URL+"/debug/pprof/allocs",
		"--kind", "moved-to-heap,escapes", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Pricing struct {
			Ranked []struct {
				File, Function, Message string
				Cost                    struct {
					AllocBytes int64 `json:"alloc_bytes"`
				} `json:"cost"`
			}
		}
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	var summarize []string
	for _, x := range r.Pricing.Ranked {
		if x.Function == "(*statsService).summarize" && x.Cost.AllocBytes > 0 {
			summarize = append(summarize, x.Message)
		}
	}
	if len(summarize) == 0 {
		t.Fatalf("no escape in (*statsService).summarize was priced; ranking: %+v", r.Pricing.Ranked)
	}
	t.Logf("priced escapes in summarize: %q", summarize)
}

func TestEscapeWithoutGo(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(testbin.Build(t), "escape", ".")
	cmd.Dir = lessonDir
	cmd.Env = []string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
		t.Fatalf("err = %v, want exit %d\n%s", err, exitFailure, out)
	}
	if !strings.Contains(string(out), "no go command found") {
		t.Errorf("output %q does not say the go command is missing", out)
	}
}
