package escape

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const fixtureDir = "testdata/fixture"

// analyzeFixture runs the real compiler on the fixture module.
func analyzeFixture(t *testing.T, opts Options) *Report {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = fixtureDir
	}
	r, err := Analyze(context.Background(), opts)
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	return r
}

// verdictLine is an -m final verdict as the compiler prints it, parsed
// here independently of the package's own parser.
var verdictLine = regexp.MustCompile(`^(.+?):(\d+):(\d+): (moved to heap: .+|.+ escapes to heap|leaking param(?: content)?: .+|leaking closure reference .+|.+ does not escape)$`)

// peerVerdicts runs the bare 'go build -gcflags=-m=2' the command wraps and
// returns its verdicts as "file:line:col: message", file relative to dir.
func peerVerdicts(t *testing.T, dir string, pkgs ...string) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", append([]string{"build", "-o", os.DevNull, "-gcflags=-m=2"}, pkgs...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build -gcflags=-m=2: %v\n%s", err, out)
	}
	abs, _ := filepath.Abs(dir)
	got := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := verdictLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		file := m[1]
		if !filepath.IsAbs(file) {
			file = filepath.Join(abs, file)
		}
		got[relativeTo(abs, file)+":"+m[2]+":"+m[3]+": "+m[4]] = true
	}
	return got
}

func TestReportMatchesCompiler(t *testing.T) {
	for _, tt := range []struct {
		name string
		dir  string
		pkgs []string
	}{
		{"fixture", fixtureDir, []string{"./a", "./b"}},
		{"lesson package", "../../leaks/escapes", []string{"."}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := peerVerdicts(t, tt.dir, tt.pkgs...)
			r := analyzeFixture(t, Options{Dir: tt.dir, Packages: tt.pkgs, AllFiles: true})
			got := map[string]bool{}
			for _, f := range r.Findings {
				got[f.File+":"+strconv.Itoa(f.Line)+":"+strconv.Itoa(f.Column)+": "+f.Message] = true
			}
			for k := range want {
				if !got[k] {
					t.Errorf("compiler says %q; report does not", k)
				}
			}
			for k := range got {
				if !want[k] {
					t.Errorf("report says %q; compiler does not", k)
				}
			}
			if len(want) == 0 {
				t.Fatal("the compiler reported nothing: the fixture is not exercising anything")
			}
		})
	}
}

// marks reads the "escape: KIND..." comments of a fixture file: line → kinds.
func marks(t *testing.T, file string) map[int][]Kind {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]Kind{}
	for i, line := range strings.Split(string(data), "\n") {
		_, after, ok := strings.Cut(line, "// escape: ")
		if !ok {
			continue
		}
		for _, k := range strings.Fields(after) {
			kind, err := ParseKind(k)
			if err != nil {
				t.Fatalf("%s:%d: %v", file, i+1, err)
			}
			out[i+1] = append(out[i+1], kind)
		}
	}
	return out
}

func TestFindingsMatchFixtureMarks(t *testing.T) {
	r := analyzeFixture(t, Options{Packages: []string{"./a", "./b"}})
	for _, file := range []string{"a/a.go", "b/b.go"} {
		want := marks(t, filepath.Join(fixtureDir, file))
		have := map[int]map[Kind]bool{}
		for _, f := range r.Findings {
			if f.File != file {
				continue
			}
			if have[f.Line] == nil {
				have[f.Line] = map[Kind]bool{}
			}
			have[f.Line][f.Kind] = true
			if f.Kind.Heap() && !containsKind(want[f.Line], f.Kind) {
				t.Errorf("%s:%d: unmarked %s finding %q", file, f.Line, f.Kind, f.Message)
			}
		}
		for line, kinds := range want {
			for _, k := range kinds {
				if !have[line][k] {
					t.Errorf("%s:%d: marked %s, report has %v", file, line, k, have[line])
				}
			}
		}
	}
}

// find returns the findings in function fn whose message contains msg.
func find(fs []Finding, fn, msg string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Function == fn && strings.Contains(f.Message, msg) {
			out = append(out, f)
		}
	}
	return out
}

func TestFindingDetails(t *testing.T) {
	r := analyzeFixture(t, Options{Packages: []string{"./a"}})
	tests := []struct {
		fn, msg     string
		kind        Kind
		flowTo      string // a flow edge into this
		reason      string // a step with this reason
		inlinedLine int    // InlinedFrom's line, 0 for none
		hint        string
	}{
		{"NewT", "moved to heap: t", KindMovedToHeap, "~r0", "address-of", 0, "return the value"},
		{"Box", "x escapes to heap", KindEscapes, "~r0", "return", 0, "returned"},
		{"Label", "n escapes to heap", KindEscapes, "{heap}", "call parameter", 0, "fmt"},
		{"Store", "leaking param: p", KindLeakingParam, "{heap}", "assign", 0, "outlives the call"},
		{"Counter", "moved to heap: n", KindMovedToHeap, "{storage for func literal}", "captured by a closure", 0, "closure"},
		{"Counter.func1", "func literal escapes to heap", KindEscapes, "~r0", "return", 0, "closure"},
		{"Caller", "moved to heap: t", KindMovedToHeap, "~r0", "address-of", 16, "return the value"},
		{"Keep", "p does not escape", KindDoesNotEscape, "", "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.fn+"/"+tt.msg, func(t *testing.T) {
			got := find(r.Findings, tt.fn, tt.msg)
			if len(got) != 1 {
				t.Fatalf("want one finding %q in %s, got %d: %+v", tt.msg, tt.fn, len(got), got)
			}
			f := got[0]
			if f.Kind != tt.kind {
				t.Errorf("kind = %s, want %s", f.Kind, tt.kind)
			}
			if f.Package != "example.com/fixture/a" {
				t.Errorf("package = %q", f.Package)
			}
			if tt.flowTo == "" && len(f.Flow) != 0 {
				t.Errorf("want no flow, got %v", f.Flow)
			}
			if tt.flowTo != "" {
				var edges []string
				foundTo, foundReason := false, false
				for _, fl := range f.Flow {
					edges = append(edges, fl.String())
					foundTo = foundTo || fl.To == tt.flowTo
					for _, s := range fl.Steps {
						foundReason = foundReason || s.Reason == tt.reason
						if s.Reason != "" && (s.File != "a/a.go" || s.Line == 0) {
							t.Errorf("step %q at %s, want a position in a/a.go", s.Expr, s.Position)
						}
					}
				}
				if !foundTo || !foundReason {
					t.Errorf("flow %q: want an edge into %s and a step for %q", edges, tt.flowTo, tt.reason)
				}
			}
			switch {
			case tt.inlinedLine == 0 && f.InlinedFrom != nil:
				t.Errorf("inlined from %v, want nil", f.InlinedFrom)
			case tt.inlinedLine != 0 && (f.InlinedFrom == nil || f.InlinedFrom.File != "a/a.go" || f.InlinedFrom.Line != tt.inlinedLine):
				t.Errorf("inlined from %v, want a/a.go:%d", f.InlinedFrom, tt.inlinedLine)
			}
			if !strings.Contains(f.Hint, tt.hint) {
				t.Errorf("hint %q does not mention %q", f.Hint, tt.hint)
			}
		})
	}
}

func TestFilesOutsideModuleLeftOut(t *testing.T) {
	goroot := runtime.GOROOT()
	outside := func(r *Report) int {
		n := 0
		for _, f := range r.Findings {
			if filepath.IsAbs(f.File) {
				if !strings.HasPrefix(f.File, goroot) {
					t.Errorf("finding outside both the module and GOROOT: %s", f.File)
				}
				n++
			}
		}
		return n
	}
	if n := outside(analyzeFixture(t, Options{Packages: []string{"./a"}})); n != 0 {
		t.Errorf("default report has %d findings outside the module", n)
	}
	if n := outside(analyzeFixture(t, Options{Packages: []string{"./a"}, AllFiles: true})); n == 0 {
		t.Error("AllFiles: want the standard library's generic code (slices.Clone, slices.Sort) reported too")
	}
}

func TestBrokenPackageDoesNotHideOthers(t *testing.T) {
	r := analyzeFixture(t, Options{}) // ./... includes broken
	if len(r.Failures) != 1 || r.Failures[0].Package != "example.com/fixture/broken" {
		t.Fatalf("failures = %+v, want only example.com/fixture/broken", r.Failures)
	}
	if msg := r.Failures[0].Output; !strings.Contains(msg, "undefined: undefinedThing") || !strings.Contains(msg, "broken/broken.go:5:") {
		t.Errorf("failure output = %q, want the compiler's message with its position", msg)
	}
	pkgs := map[string]bool{}
	for _, f := range r.Findings {
		pkgs[f.Package] = true
	}
	if !pkgs["example.com/fixture/a"] || !pkgs["example.com/fixture/b"] {
		t.Errorf("findings from %v, want both a and b", pkgs)
	}
}

func TestUnknownPackageIsAFailure(t *testing.T) {
	r := analyzeFixture(t, Options{Packages: []string{"./a", "./nosuchdir"}})
	if len(r.Failures) != 1 || !strings.Contains(r.Failures[0].Output, "nosuchdir") {
		t.Fatalf("failures = %+v, want one naming ./nosuchdir", r.Failures)
	}
	if len(find(r.Findings, "NewT", "moved to heap")) != 1 {
		t.Error("the known package's findings are missing")
	}
}

func TestNoGoToolchain(t *testing.T) {
	_, err := Analyze(context.Background(), Options{Dir: fixtureDir, Go: filepath.Join(t.TempDir(), "go")})
	if !errors.Is(err, ErrNoGo) {
		t.Fatalf("err = %v, want ErrNoGo", err)
	}
}

func TestGCFlagsPassThrough(t *testing.T) {
	// With inlining off, Caller no longer inlines NewT, so NewT's t is not
	// reported at the call any more.
	r := analyzeFixture(t, Options{Packages: []string{"./a"}, GCFlags: []string{"-l"}})
	if got := find(r.Findings, "Caller", "moved to heap"); len(got) != 0 {
		t.Errorf("with -l: %v, want no moved-to-heap in Caller", got)
	}
	if got := find(r.Findings, "NewT", "moved to heap: t"); len(got) != 1 {
		t.Errorf("with -l: NewT's escape missing")
	}
	if _, err := Analyze(context.Background(), Options{Dir: fixtureDir, GCFlags: []string{"all=-l"}}); err == nil {
		t.Error("a package pattern in GCFlags: want an error")
	}
}

func TestFilter(t *testing.T) {
	fs := []Finding{
		{File: "a/a.go", Function: "NewT", Kind: KindMovedToHeap},
		{File: "a/a.go", Function: "Keep", Kind: KindDoesNotEscape},
		{File: "b/b.go", Function: "Make", Kind: KindEscapes},
		{File: "c/b.go", Function: "NewTwo", Kind: KindEscapes},
	}
	tests := []struct {
		name   string
		filter Filter
		want   []string
	}{
		{"zero keeps all", Filter{}, []string{"NewT", "Keep", "Make", "NewTwo"}},
		{"kinds", Filter{Kinds: []Kind{KindEscapes, KindMovedToHeap}}, []string{"NewT", "Make", "NewTwo"}},
		{"func regexp", Filter{Func: regexp.MustCompile("^New")}, []string{"NewT", "NewTwo"}},
		{"file path", Filter{File: "b/b.go"}, []string{"Make"}},
		{"file base name", Filter{File: "b.go"}, []string{"Make", "NewTwo"}},
		{"combined", Filter{File: "b.go", Func: regexp.MustCompile("Two")}, []string{"NewTwo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkFilter(t, tt.filter, fs, tt.want) })
	}
}

// checkFilter checks that filter keeps, of fs, the findings in the
// functions want, in order.
func checkFilter(t *testing.T, filter Filter, fs []Finding, want []string) {
	t.Helper()
	var got []string
	for _, f := range filter.Apply(fs) {
		got = append(got, f.Function)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
}

// --file may name the file absolutely or from the current directory, and
// through a symbolic link on either side, while findings name it from the
// analysed directory.
func TestFilterFilePaths(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b/b.go", "c/b.go"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), []byte("package b\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "x.go")
	fs := []Finding{
		{File: "b/b.go", Function: "Make"},
		{File: "c/b.go", Function: "NewTwo"},
		{File: filepath.ToSlash(outside), Function: "Outside"},
	}
	t.Chdir(filepath.Join(dir, "c"))
	tests := []struct {
		name   string
		filter Filter
		want   []string
	}{
		{"absolute", Filter{File: filepath.Join(dir, "b", "b.go"), Dir: dir}, []string{"Make"}},
		{"absolute, other file", Filter{File: filepath.Join(dir, "c", "b.go"), Dir: dir}, []string{"NewTwo"}},
		{"absolute, no such file", Filter{File: filepath.Join(dir, "b", "none.go"), Dir: dir}, nil},
		{"absolute, outside the analysed directory", Filter{File: outside, Dir: dir}, []string{"Outside"}},
		{"from the current directory", Filter{File: "../b/b.go", Dir: dir}, []string{"Make"}},
		{"the current directory's file", Filter{File: "./b.go", Dir: dir}, []string{"Make", "NewTwo"}}, // also the trailing elements of b/b.go
		{"from the analysed directory", Filter{File: "b/b.go", Dir: dir}, []string{"Make"}},
		{"through a link", Filter{File: filepath.Join(link, "b", "b.go"), Dir: dir}, []string{"Make"}},
		{"analysed through a link", Filter{File: filepath.Join(dir, "c", "b.go"), Dir: link}, []string{"NewTwo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkFilter(t, tt.filter, fs, tt.want) })
	}
}

func TestCompare(t *testing.T) {
	f := func(file string, line int, fn string, kind Kind, msg string) Finding {
		return Finding{File: file, Line: line, Function: fn, Kind: kind, Message: msg}
	}
	base := []Finding{
		f("a/a.go", 10, "NewT", KindMovedToHeap, "moved to heap: t"),
		f("a/a.go", 20, "Box", KindEscapes, "x escapes to heap"),
		f("a/a.go", 30, "Keep", KindDoesNotEscape, "p does not escape"),
	}
	tests := []struct {
		name                string
		head                []Finding
		introduced, removed []string
		newHeap             int
	}{
		{"unchanged", base, nil, nil, 0},
		{"lines moved", []Finding{
			f("a/a.go", 15, "NewT", KindMovedToHeap, "moved to heap: t"),
			f("a/a.go", 25, "Box", KindEscapes, "x escapes to heap"),
		}, nil, nil, 0},
		{"function moved to another file of the package", []Finding{
			f("a/other.go", 3, "NewT", KindMovedToHeap, "moved to heap: t"),
			f("a/a.go", 20, "Box", KindEscapes, "x escapes to heap"),
		}, nil, nil, 0},
		{"one added, one removed", []Finding{
			f("a/a.go", 10, "NewT", KindMovedToHeap, "moved to heap: t"),
			f("a/a.go", 40, "Grow", KindEscapes, "make([]byte, n) escapes to heap"),
			f("a/a.go", 50, "Grow", KindLeakingParam, "leaking param: p"),
			f("a/a.go", 60, "New", KindDoesNotEscape, "q does not escape"),
		}, []string{"Grow", "Grow"}, []string{"Box"}, 1},
		{"a second escape of the same kind counts", append(append([]Finding{}, base...),
			f("a/a.go", 11, "NewT", KindMovedToHeap, "moved to heap: t")), []string{"NewT"}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compare(base, tt.head)
			names := func(fs []Finding) []string {
				var out []string
				for _, f := range fs {
					out = append(out, f.Function)
				}
				sort.Strings(out)
				return out
			}
			if got := names(c.Introduced); strings.Join(got, ",") != strings.Join(tt.introduced, ",") {
				t.Errorf("introduced %v, want %v", got, tt.introduced)
			}
			if got := names(c.Removed); strings.Join(got, ",") != strings.Join(tt.removed, ",") {
				t.Errorf("removed %v, want %v", got, tt.removed)
			}
			if got := c.NewHeapEscapes(); got != tt.newHeap {
				t.Errorf("NewHeapEscapes = %d, want %d", got, tt.newHeap)
			}
		})
	}
}

// The findings of a package that did not build at the base are left out
// of the comparison, so none of them counts as introduced.
func TestWithoutPackages(t *testing.T) {
	head := []Finding{
		{File: "a/a.go", Function: "NewT", Package: "m/a", Kind: KindMovedToHeap, Message: "moved to heap: t"},
		{File: "b/b.go", Function: "Make", Package: "m/b", Kind: KindEscapes, Message: "make([]byte, n) escapes to heap"},
	}
	if got := WithoutPackages(head, nil); len(got) != 2 {
		t.Errorf("no failures: kept %d of 2", len(got))
	}
	kept := WithoutPackages(head, []Failure{{Package: "m/b", Output: "undefined: x"}})
	if len(kept) != 1 || kept[0].Function != "NewT" {
		t.Fatalf("kept %+v, want a's NewT alone", kept)
	}
	if c := Compare(head[:1], kept); len(c.Introduced) != 0 || len(c.Removed) != 0 {
		t.Errorf("compared with a base where m/b did not build: %+v, want no change", c)
	}
}

func TestFuncNames(t *testing.T) {
	src := `package p

type T[K any] struct{}

func (t *T[K]) M() {
	_ = func() {
		_ = func() {}
	}
	_ = func() {}
}

func (T[K]) V() {}

func F() {}

var g = func() {}
`
	file := filepath.Join(t.TempDir(), "p.go")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newFuncNamer()
	tests := []struct {
		line, col int
		want      string
	}{
		{5, 1, "(*T).M"},
		{6, 6, "(*T).M.func1"},
		{7, 7, "(*T).M.func1.1"},
		{9, 6, "(*T).M.func2"},
		{12, 14, "T.V"},
		{14, 6, "F"},
		{16, 10, "glob..func1"},
		{3, 1, "init"},
	}
	for _, tt := range tests {
		if got := n.enclosing(file, tt.line, tt.col); got != tt.want {
			t.Errorf("%d:%d: got %q, want %q", tt.line, tt.col, got, tt.want)
		}
	}
}

func TestWorkspaceModulesAreInside(t *testing.T) {
	ws := t.TempDir()
	if err := os.CopyFS(filepath.Join(ws, "m1"), os.DirFS(fixtureDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "go.work"), []byte("go 1.26\n\nuse ./m1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := analyzeFixture(t, Options{Dir: filepath.Join(ws, "m1"), Packages: []string{"./a"}})
	if len(find(r.Findings, "NewT", "moved to heap: t")) != 1 {
		t.Errorf("in a workspace the module's own findings are missing: %+v", r.Findings)
	}
	for _, f := range r.Findings {
		if filepath.IsAbs(f.File) {
			t.Errorf("finding outside the workspace's modules kept: %s", f.File)
		}
	}
}
