package profiles

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/testbin"
)

// pprofRow is one line of 'go tool pprof -top'.
type pprofRow struct{ flat, cum int64 }

// pprofTop runs the real go tool pprof -top with args and returns its
// rows by function name, in bytes or counts (-unit=B for byte profiles).
func pprofTop(t *testing.T, args ...string) map[string]pprofRow {
	t.Helper()
	full := append([]string{"tool", "pprof", "-top", "-nodecount=100000", "-nodefraction=0", "-edgefraction=0", "-unit=B"}, args...)
	cmd := exec.Command("go", full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(full, " "), err, &stderr)
	}
	rows := map[string]pprofRow{}
	inTable := false
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 5 && fields[0] == "flat" {
			inTable = true
			continue
		}
		if !inTable || len(fields) < 6 {
			continue
		}
		name := strings.TrimSuffix(strings.Join(fields[5:], " "), " (inline)")
		rows[name] = pprofRow{flat: parsePprofValue(t, fields[0]), cum: parsePprofValue(t, fields[3])}
	}
	if len(rows) == 0 {
		t.Fatalf("no rows in go tool pprof output:\n%s", out)
	}
	return rows
}

func parsePprofValue(t *testing.T, s string) int64 {
	v, err := strconv.ParseInt(strings.TrimSuffix(s, "B"), 10, 64)
	if err != nil {
		t.Fatalf("pprof value %q: %v", s, err)
	}
	return v
}

// The rows of leaklab's diff carry the same functions and values as
// 'go tool pprof -top -diff_base' on the same real pair: flat as
// base/current/delta, cumulative as the *_cum fields.
func TestDiffMatchesPprofDiffBase(t *testing.T) {
	// Parallel, each case too: most of the time is go tool pprof's, a
	// process of its own per case.
	t.Parallel()
	cases := []struct {
		pair  string
		opts  DiffOptions
		flags []string // the same options, as go tool pprof flags
	}{
		{"heap", DiffOptions{SampleIndex: "inuse_space"}, []string{"-sample_index=inuse_space"}},
		{"heap", DiffOptions{SampleIndex: "inuse_objects"}, []string{"-sample_index=inuse_objects"}},
		{"heap", DiffOptions{SampleIndex: "alloc_space"}, []string{"-sample_index=alloc_space"}},
		{"heap", DiffOptions{SampleIndex: "alloc_objects"}, []string{"-sample_index=alloc_objects"}},
		{"heap", DiffOptions{SampleIndex: "alloc_space", By: ByLine}, []string{"-sample_index=alloc_space", "-lines"}},
		{"heap", DiffOptions{SampleIndex: "alloc_space", Focus: "net/http"}, []string{"-sample_index=alloc_space", "-focus=net/http"}},
		{"heap", DiffOptions{SampleIndex: "alloc_objects", Ignore: "textproto|bufio"}, []string{"-sample_index=alloc_objects", "-ignore=textproto|bufio"}},
		{"goroutine", DiffOptions{}, nil},
		{"goroutine", DiffOptions{By: ByLine}, []string{"-lines"}},
	}
	for _, tc := range cases {
		t.Run(tc.pair+strings.Join(tc.flags, ""), func(t *testing.T) {
			t.Parallel()
			base, cur := loadPair(t, tc.pair)
			rep, err := Diff(base, cur, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := pprofTop(t, append(tc.flags, "-diff_base", base.Target, cur.Target)...)
			compareWithPprof(t, rep, want)
		})
	}
}

func compareWithPprof(t *testing.T, rep *DiffReport, want map[string]pprofRow) {
	t.Helper()
	if rep.TotalRows == 0 {
		t.Fatal("the diff has no rows")
	}
	all := map[string]DiffRow{}
	for _, r := range rep.Rows {
		name := r.Function
		if rep.By == ByLine {
			name = fmt.Sprintf("%s %s:%d", r.Function, r.File, r.Line)
		}
		all[name] = r
	}
	if len(rep.Rows) < rep.TotalRows {
		t.Fatalf("report cut to %d of %d rows; the comparison needs all", len(rep.Rows), rep.TotalRows)
	}
	for name, w := range want {
		got, ok := all[name]
		if !ok {
			t.Errorf("pprof has %s (flat %d, cum %d); leaklab has no row", name, w.flat, w.cum)
			continue
		}
		if got.Delta != w.flat || got.DeltaCum != w.cum {
			t.Errorf("%s: leaklab delta %d, delta_cum %d; pprof flat %d, cum %d", name, got.Delta, got.DeltaCum, w.flat, w.cum)
		}
	}
	for name, r := range all {
		if _, ok := want[name]; !ok {
			t.Errorf("leaklab has %s (delta %d, delta_cum %d); pprof does not", name, r.Delta, r.DeltaCum)
		}
	}
	// The top row is the largest growth, and it is pprof's largest positive flat.
	var best string
	var bestFlat int64
	for name, w := range want {
		if w.flat > bestFlat || (w.flat == bestFlat && name < best) {
			best, bestFlat = name, w.flat
		}
	}
	if got := all[best]; bestFlat > 0 && (rep.Rows[0].Function != got.Function || rep.Rows[0].Line != got.Line || rep.Rows[0].Delta != bestFlat) {
		t.Errorf("top row %s %+d; pprof's largest growth is %s %+d", rep.Rows[0].Function, rep.Rows[0].Delta, best, bestFlat)
	}
}

// The -o profile, opened by plain 'go tool pprof -top', shows what
// 'go tool pprof -top -diff_base' shows.
func TestDiffProfileOpensLikeDiffBase(t *testing.T) {
	t.Parallel()
	for _, pair := range []string{"heap", "goroutine"} {
		t.Run(pair, func(t *testing.T) {
			t.Parallel()
			base, cur := loadPair(t, pair)
			p, err := DiffProfile(base, cur)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "diff.pb.gz")
			if err := WriteProfile(out, p); err != nil {
				t.Fatal(err)
			}
			got := pprofTop(t, out)
			want := pprofTop(t, "-diff_base", base.Target, cur.Target)
			if len(got) != len(want) {
				t.Errorf("%d rows from the -o profile, %d from -diff_base", len(got), len(want))
			}
			for name, w := range want {
				if got[name] != w {
					t.Errorf("%s: -o profile %+v, -diff_base %+v", name, got[name], w)
				}
			}
			base2, err := profile.Parse(bytes.NewReader(mustRead(t, out)))
			if err != nil {
				t.Fatal(err)
			}
			tagged := 0
			for _, s := range base2.Sample {
				if len(s.Label[baseLabel]) == 1 && s.Label[baseLabel][0] == "true" {
					tagged++
				}
			}
			bp, _ := base.Profile()
			if tagged != len(bp.Sample) {
				t.Errorf("%d samples tagged %s=true, want the base's %d", tagged, baseLabel, len(bp.Sample))
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Goroutine diffs group the leaked goroutines at their leak site with the
// wait state: abandoned-worker's backend parked in chan send.
func TestDiffGoroutineLeakSite(t *testing.T) {
	base, cur := loadPair(t, "goroutine")
	rep, err := Diff(base, cur, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.LeakSites) == 0 {
		t.Fatal("no leak sites in a goroutine diff")
	}
	top := rep.LeakSites[0]
	const site = "github.com/leaklab/leaklab/leaks.(*searchService).backend"
	if top.Function != site || top.WaitState != "chan send" {
		t.Errorf("top leak site %s [%s], want %s [chan send]", top.Function, top.WaitState, site)
	}
	if top.Delta < 100 || top.Delta != rep.CurrentTotal-rep.BaseTotal-otherDeltas(rep.LeakSites[1:]) {
		t.Errorf("top leak site grew by %d of the %d new goroutines", top.Delta, rep.CurrentTotal-rep.BaseTotal)
	}
	if top.Stack[0] != "runtime.gopark" || !contains(top.Stack, site) {
		t.Errorf("example stack %v should run from runtime.gopark to %s", top.Stack, site)
	}
	// By stack, the same leak is one row whose function is the leak site.
	byStack, err := Diff(base, cur, DiffOptions{By: ByStack})
	if err != nil {
		t.Fatal(err)
	}
	if r := byStack.Rows[0]; r.Function != site || r.Delta != top.Delta || r.Stack[0] != "runtime.gopark" {
		t.Errorf("top stack row %s %+d %v, want %s %+d", r.Function, r.Delta, r.Stack, site, top.Delta)
	}
}

func otherDeltas(sites []LeakSite) int64 {
	var sum int64
	for _, s := range sites {
		sum += s.Delta
	}
	return sum
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestDiffOptions(t *testing.T) {
	heapBase, heapCur := loadPair(t, "heap")
	grBase, grCur := loadPair(t, "goroutine")
	const culprit = "github.com/leaklab/leaklab/leaks.(*pageCache).render"
	cases := []struct {
		name      string
		base, cur *Captured
		opts      DiffOptions
		wantErr   string
		check     func(t *testing.T, rep *DiffReport)
	}{
		{name: "heap default is inuse_space", base: heapBase, cur: heapCur, check: func(t *testing.T, rep *DiffReport) {
			if rep.SampleType != "inuse_space" || rep.Unit != "bytes" || rep.Rows[0].Function != culprit || rep.Rows[0].Delta <= 0 {
				t.Errorf("got %s/%s, top %+v", rep.SampleType, rep.Unit, rep.Rows[0])
			}
		}},
		{name: "sample index by number", base: heapBase, cur: heapCur, opts: DiffOptions{SampleIndex: "0"}, check: func(t *testing.T, rep *DiffReport) {
			if rep.SampleType != "alloc_objects" {
				t.Errorf("index 0 is %s, want alloc_objects", rep.SampleType)
			}
		}},
		{name: "top", base: heapBase, cur: heapCur, opts: DiffOptions{Top: 2}, check: func(t *testing.T, rep *DiffReport) {
			if len(rep.Rows) != 2 || rep.TotalRows <= 2 {
				t.Errorf("%d rows of %d", len(rep.Rows), rep.TotalRows)
			}
		}},
		{name: "focus keeps only matching samples", base: heapBase, cur: heapCur, opts: DiffOptions{Focus: `pageCache`}, check: func(t *testing.T, rep *DiffReport) {
			for _, r := range rep.Rows {
				if r.DeltaCum != rep.Rows[0].DeltaCum && r.Function != culprit {
					t.Errorf("row %s outside the focus: %+v", r.Function, r)
				}
			}
		}},
		{name: "ignore drops matching samples", base: heapBase, cur: heapCur, opts: DiffOptions{Ignore: `pageCache`}, check: func(t *testing.T, rep *DiffReport) {
			for _, r := range rep.Rows {
				if r.Function == culprit {
					t.Errorf("ignored function still present: %+v", r)
				}
			}
		}},
		{name: "by line", base: heapBase, cur: heapCur, opts: DiffOptions{By: ByLine}, check: func(t *testing.T, rep *DiffReport) {
			r := rep.Rows[0]
			if r.Function != culprit || !strings.HasSuffix(r.File, "unbounded_cache.go") || r.Line == 0 {
				t.Errorf("top line row %+v", r)
			}
		}},
		{name: "goroutine against heap", base: heapBase, cur: grCur, wantErr: "cannot diff a goroutine profile against a heap profile"},
		{name: "heap against goroutine", base: grBase, cur: heapCur, wantErr: "cannot diff a heap profile against a goroutine profile"},
		{name: "unknown sample type", base: heapBase, cur: heapCur, opts: DiffOptions{SampleIndex: "bogus"}, wantErr: `no sample type "bogus"`},
		{name: "sample index out of range", base: heapBase, cur: heapCur, opts: DiffOptions{SampleIndex: "9"}, wantErr: "out of range"},
		{name: "bad focus", base: heapBase, cur: heapCur, opts: DiffOptions{Focus: "("}, wantErr: "--focus"},
		{name: "bad grouping", base: heapBase, cur: heapCur, opts: DiffOptions{By: "module"}, wantErr: "cannot group by"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Diff(tc.base, tc.cur, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, rep)
		})
	}
}

// Sample types that do not line up are refused even when the profile
// types agree.
func TestDiffMismatchedSampleTypes(t *testing.T) {
	base, cur := loadPair(t, "heap")
	p, err := cur.Profile()
	if err != nil {
		t.Fatal(err)
	}
	q := p.Copy()
	q.SampleType = q.SampleType[:3]
	for _, s := range q.Sample {
		s.Value = s.Value[:3]
	}
	trimmed := NewCaptured(Meta{Type: TypeHeap, Target: "trimmed"}, q)
	_, err = Diff(base, trimmed, DiffOptions{})
	if err == nil || !strings.Contains(err.Error(), "sample types do not line up") {
		t.Fatalf("err = %v", err)
	}
}

// Diffing a profile against itself gives no rows.
func TestDiffAgainstItself(t *testing.T) {
	_, cur := loadPair(t, "heap")
	rep, err := Diff(cur, cur, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 0 || rep.BaseTotal != rep.CurrentTotal {
		t.Errorf("self-diff has %d rows, totals %d/%d", len(rep.Rows), rep.BaseTotal, rep.CurrentTotal)
	}
	if js, _ := json.Marshal(rep); !strings.Contains(string(js), `"rows":[]`) {
		t.Errorf("an empty diff's rows are not [] in JSON: %s", js)
	}
}

func TestLeakSiteHelpers(t *testing.T) {
	for _, tc := range []struct {
		fn  string
		std bool
	}{
		{"runtime.gopark", true},
		{"net/http.(*conn).serve", true},
		{"internal/poll.runtime_pollWait", true},
		{"main.main", false},
		{"github.com/leaklab/leaklab/leaks.(*searchService).backend", false},
		{"example.com/x.F", false},
	} {
		if got := isStdlibFunc(tc.fn); got != tc.std {
			t.Errorf("isStdlibFunc(%q) = %v", tc.fn, got)
		}
	}
	if got := stackLabel([]string{"a/b.f", "a/b.g", "a/b.g", "a/b.g", "c.h"}); got != "b.f ← b.g ×3 ← c.h" {
		t.Errorf("stackLabel = %q", got)
	}
	if !regexp.MustCompile(`^\+1\.00 MiB$`).MatchString(FormatValue(1<<20, "bytes", true)) {
		t.Errorf("FormatValue = %q", FormatValue(1<<20, "bytes", true))
	}
}

// FuzzDiff diffs an arbitrary profile against a real capture, both ways
// and with every grouping: it may refuse, never panic, and an accepted
// diff's rows must add up to its totals.
func FuzzDiff(f *testing.F) {
	for _, name := range []string{"heap-current.pb.gz", "goroutine-current.pb.gz", "heap-base.pb.gz"} {
		c, err := ReadFile(filepath.Join("testdata", name), Limits{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.data, uint8(0))
		f.Add(c.data, uint8(2))
	}
	f.Add(manySamplesProfile(5), uint8(1))
	base, _ := loadPair(f, "heap")
	grBase, _ := loadPair(f, "goroutine")
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		c, err := Read(bytes.NewReader(data), Limits{MaxDecompressed: 8 << 20, MaxSamples: 10000})
		if err != nil {
			return
		}
		by := []string{ByFunction, ByLine, ByStack}[int(mode)%3]
		other := base
		if mode&4 != 0 {
			other = grBase
		}
		for _, pair := range [][2]*Captured{{other, c}, {c, other}, {c, c}} {
			rep, err := Diff(pair[0], pair[1], DiffOptions{By: by})
			if err != nil {
				continue
			}
			if by == ByStack && rep.TotalRows == len(rep.Rows) {
				var sum int64
				for _, r := range rep.Rows {
					sum += r.Delta
				}
				if sum != rep.CurrentTotal-rep.BaseTotal {
					t.Errorf("by stack, rows sum to %d, totals differ by %d", sum, rep.CurrentTotal-rep.BaseTotal)
				}
			}
		}
	})
}

// The goroutineleak profile (GOEXPERIMENT=goroutineleakprofile) holds only
// goroutines the runtime proved leaked; they group at the same leak site.
func TestGoroutineLeakProfile(t *testing.T) {
	c, err := ReadFile(filepath.Join("testdata", "goroutineleak.pb.gz"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != TypeGoroutineLeak {
		t.Errorf("type %q, want goroutineleak", c.Type)
	}
	rep, err := Summarize(c, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const site = "github.com/leaklab/leaklab/leaks.(*searchService).backend"
	if len(rep.LeakSites) == 0 || rep.LeakSites[0].Function != site || rep.LeakSites[0].WaitState != "chan send" || rep.LeakSites[0].Current < 50 {
		t.Errorf("leak sites %+v, want %s [chan send] with the leaked workers", rep.LeakSites, site)
	}
	_, grCur := loadPair(t, "goroutine")
	if _, err := Diff(grCur, c, DiffOptions{}); err == nil || !strings.Contains(err.Error(), "sample types do not line up") {
		t.Errorf("goroutine against goroutineleak: %v", err)
	}
}

// Mutex and block profiles share their sample types but measure different
// waits: diffing one against the other is refused, while a contention
// profile read from a file (which does not say which it is) goes with
// either. Real captures from global-mutex.
func TestDiffRefusesMutexAgainstBlock(t *testing.T) {
	svc := testbin.StartService(t, "global-mutex", false)
	ctx := context.Background()
	fetch := func(typ string) *Captured {
		c, err := Fetch(ctx, svc.URL, FetchOptions{Type: typ, NoServiceName: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	mutex, block := fetch(TypeMutex), fetch(TypeBlock)
	if _, err := Diff(mutex, block, DiffOptions{}); err == nil || !strings.Contains(err.Error(), "cannot diff a block profile against a mutex profile") {
		t.Errorf("mutex against block: %v", err)
	}
	if _, err := DiffProfile(block, mutex); err == nil {
		t.Error("DiffProfile took a block profile against a mutex one")
	}
	var buf bytes.Buffer
	if _, err := mutex.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	fromFile, err := Read(&buf, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.Type == TypeMutex || fromFile.Type == TypeBlock {
		t.Fatalf("a file's contention profile says it is %s", fromFile.Type)
	}
	for _, pair := range [][2]*Captured{{mutex, fetch(TypeMutex)}, {fromFile, block}, {mutex, fromFile}} {
		if _, err := Diff(pair[0], pair[1], DiffOptions{}); err != nil {
			t.Errorf("%s against %s: %v", pair[1].Type, pair[0].Type, err)
		}
	}
}
