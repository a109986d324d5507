package profiles

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Groupings for DiffOptions.By.
const (
	ByFunction = "function"
	ByLine     = "line"
	ByStack    = "stack"
)

// DefaultTop is how many rows a diff report keeps unless told otherwise.
const DefaultTop = 20

// DiffOptions say what to compare and how to group it.
type DiffOptions struct {
	// SampleIndex names the sample type (inuse_space, alloc_objects, …)
	// or its index; the profile's default sample type when empty.
	SampleIndex string
	// By is ByFunction (default), ByLine or ByStack.
	By string
	// Top keeps the first Top rows (largest growth first); all when zero
	// or negative.
	Top int
	// Focus keeps only samples with a frame whose function or file
	// matches; Ignore drops samples with one. Regular expressions, as in
	// pprof's -focus and -ignore.
	Focus, Ignore string
	// Own says which frames are the target's own code, where goroutine
	// leak sites are named; the zero value skips the standard library and
	// well-known libraries.
	Own OwnCode
}

// DiffReport is the difference between two profiles of the same kind.
type DiffReport struct {
	SampleType   string `json:"sample_type"`
	Unit         string `json:"unit"`
	By           string `json:"by"`
	Base         Meta   `json:"base"`
	Current      Meta   `json:"current"`
	BaseTotal    int64  `json:"base_total"`
	CurrentTotal int64  `json:"current_total"`
	// Rows are sorted by Delta, largest growth first.
	Rows []DiffRow `json:"rows"`
	// TotalRows counts the rows before Top cut them.
	TotalRows int `json:"total_rows"`
	// LeakSites groups goroutine profiles by where the goroutines wait
	// in the target's own code; empty for other profiles.
	LeakSites []LeakSite `json:"leak_sites,omitempty"`
	// OwnCode is the rule leak sites were named by, when one was given
	// (absent: the default, all but the standard and well-known libraries).
	OwnCode *OwnCode `json:"own_code,omitempty"`
}

// DiffRow is one function, line or stack. For functions and lines Base,
// Current and Delta are flat values (the row's own, as pprof's flat
// column) and the *Cum fields the cumulative ones.
type DiffRow struct {
	Function   string   `json:"function"`
	File       string   `json:"file,omitempty"`
	Line       int64    `json:"line,omitempty"`
	Stack      []string `json:"stack,omitempty"` // leaf first, for ByStack
	Base       int64    `json:"base"`
	Current    int64    `json:"current"`
	Delta      int64    `json:"delta"`
	BaseCum    int64    `json:"base_cum"`
	CurrentCum int64    `json:"current_cum"`
	DeltaCum   int64    `json:"delta_cum"`
}

// LeakSite is a set of goroutines waiting in the same state at the same
// function: the first frame of the target's own code below the runtime's
// blocking frames.
type LeakSite struct {
	Function  string   `json:"function"`
	WaitState string   `json:"wait_state"`
	Base      int64    `json:"base"`
	Current   int64    `json:"current"`
	Delta     int64    `json:"delta"`
	Stack     []string `json:"stack"` // one example stack, leaf first
}

// Diff compares cur against base: what grew, what shrank, by function,
// line or stack, and for goroutine profiles by leak site.
func Diff(base, cur *Captured, opts DiffOptions) (*DiffReport, error) {
	if base == nil || cur == nil {
		return nil, errors.New("diff needs two profiles")
	}
	return compare(base, cur, opts)
}

// Summarize reports one profile on its own, in the shape of a diff
// against nothing: Current and Delta carry its values.
func Summarize(c *Captured, opts DiffOptions) (*DiffReport, error) {
	return compare(nil, c, opts)
}

func compare(base, cur *Captured, opts DiffOptions) (*DiffReport, error) {
	if opts.By == "" {
		opts.By = ByFunction
	}
	if opts.By != ByFunction && opts.By != ByLine && opts.By != ByStack {
		return nil, fmt.Errorf("cannot group by %q (want function, line or stack)", opts.By)
	}
	if base != nil && !diffable(base.Type, cur.Type) {
		return nil, fmt.Errorf("cannot diff %s profile against %s profile", withArticle(cur.Type), withArticle(base.Type))
	}
	filter, err := newSampleFilter(opts.Focus, opts.Ignore)
	if err != nil {
		return nil, err
	}
	cd, err := cur.decoded()
	if err != nil {
		return nil, fmt.Errorf("current %s: %w", cur.Target, err)
	}
	var bd *decoded
	if base != nil {
		if bd, err = base.decoded(); err != nil {
			return nil, fmt.Errorf("base %s: %w", base.Target, err)
		}
		if err := sameSampleTypes(bd.sampleTypes, cd.sampleTypes); err != nil {
			return nil, err
		}
	}
	vi, err := sampleIndex(cd, opts.SampleIndex)
	if err != nil {
		return nil, err
	}
	agg := newAggregator(opts.By, filter)
	agg.own = opts.Own
	if typeFamily(cur.Type) == "goroutine" || cd.sampleTypes[vi].Type == "goroutine" {
		agg.sites = map[siteKey]*LeakSite{}
	}
	rep := &DiffReport{
		SampleType: cd.sampleTypes[vi].Type,
		Unit:       cd.sampleTypes[vi].Unit,
		By:         opts.By,
		Current:    cur.Meta,
	}
	if base != nil {
		rep.Base = base.Meta
		if rep.BaseTotal, err = agg.add(bd, vi, 0); err != nil {
			return nil, fmt.Errorf("base %s: %w", base.Target, err)
		}
	}
	if rep.CurrentTotal, err = agg.add(cd, vi, 1); err != nil {
		return nil, fmt.Errorf("current %s: %w", cur.Target, err)
	}
	rep.Rows = agg.rows(base != nil)
	rep.TotalRows = len(rep.Rows)
	if opts.Top > 0 && len(rep.Rows) > opts.Top {
		rep.Rows = rep.Rows[:opts.Top]
	}
	if agg.sites != nil {
		if len(opts.Own.Prefixes) > 0 {
			rep.OwnCode = &opts.Own
		}
		rep.LeakSites = agg.leakSites(base != nil)
		if opts.Top > 0 && len(rep.LeakSites) > opts.Top {
			rep.LeakSites = rep.LeakSites[:opts.Top]
		}
	}
	return rep, nil
}

func sameSampleTypes(a, b []ValueType) error {
	if len(a) != len(b) {
		return fmt.Errorf("the profiles' sample types do not line up: %s against %s", describeTypes(a), describeTypes(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Errorf("the profiles' sample types do not line up: %s against %s", describeTypes(a), describeTypes(b))
		}
	}
	return nil
}

func describeTypes(ts []ValueType) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.Type+"/"+t.Unit)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// sampleIndex resolves a sample type name or index; empty means the
// profile's default, else the last type (pprof's rule).
func sampleIndex(d *decoded, want string) (int, error) {
	if want == "" {
		for i, st := range d.sampleTypes {
			if st.Type == d.defaultSampleType {
				return i, nil
			}
		}
		return len(d.sampleTypes) - 1, nil // pprof's rule without a (valid) default
	}
	if n, err := strconv.Atoi(want); err == nil {
		if n < 0 || n >= len(d.sampleTypes) {
			return 0, fmt.Errorf("sample index %d out of range (the profile has %s)", n, describeTypes(d.sampleTypes))
		}
		return n, nil
	}
	for i, st := range d.sampleTypes {
		if st.Type == want {
			return i, nil
		}
	}
	var names []string
	for _, st := range d.sampleTypes {
		names = append(names, st.Type)
	}
	return 0, fmt.Errorf("no sample type %q in the profile (it has %s)", want, strings.Join(names, ", "))
}

// sampleFilter is pprof's -focus/-ignore: regular expressions matched
// against each frame's function name and file name.
type sampleFilter struct {
	focus, ignore *regexp.Regexp
}

func newSampleFilter(focus, ignore string) (sampleFilter, error) {
	var f sampleFilter
	var err error
	if focus != "" {
		if f.focus, err = regexp.Compile(focus); err != nil {
			return f, fmt.Errorf("--focus: %w", err)
		}
	}
	if ignore != "" {
		if f.ignore, err = regexp.Compile(ignore); err != nil {
			return f, fmt.Errorf("--ignore: %w", err)
		}
	}
	return f, nil
}

func (f sampleFilter) active() bool { return f.focus != nil || f.ignore != nil }

// rowKey indexes a row in the aggregator's key space, shared by both
// profiles so that the same function lines up across them.
type rowKey = int32

// aggregator sums flat and cumulative values per row key for the base
// (side 0) and the current (side 1) profile.
type aggregator struct {
	by     string
	filter sampleFilter

	keys     map[string]rowKey
	names    []string // function name of each key
	files    []string
	lineNums []int64
	stacks   [][]rowKey // for ByStack: function keys of the stack, leaf first
	flat     [][2]int64
	cum      [][2]int64
	seen     []int32 // per key: last sample that counted it in cum

	fnKeys  map[string]rowKey // function names → key, for stack frames
	fnNames []string

	sites map[siteKey]*LeakSite
	own   OwnCode
	// generated are the functions of generated files (IsGeneratedFile),
	// never named as a leak site.
	generated map[string]bool
}

type siteKey struct{ function, wait string }

func newAggregator(by string, filter sampleFilter) *aggregator {
	return &aggregator{by: by, filter: filter, keys: map[string]rowKey{}, fnKeys: map[string]rowKey{}}
}

func (a *aggregator) key(k, name, file string, line int64) rowKey {
	if id, ok := a.keys[k]; ok {
		return id
	}
	id := rowKey(len(a.names))
	a.keys[k] = id
	a.names = append(a.names, name)
	a.files = append(a.files, file)
	a.lineNums = append(a.lineNums, line)
	a.flat = append(a.flat, [2]int64{})
	a.cum = append(a.cum, [2]int64{})
	a.seen = append(a.seen, -1)
	return id
}

func (a *aggregator) fnKey(name string) rowKey {
	if id, ok := a.fnKeys[name]; ok {
		return id
	}
	id := rowKey(len(a.fnNames))
	a.fnKeys[name] = id
	a.fnNames = append(a.fnNames, name)
	return id
}

// add aggregates one profile's samples at value index vi into side and
// returns the total of the kept samples.
func (a *aggregator) add(d *decoded, vi, side int) (int64, error) {
	// Per line of every location: its row key (function or function:line)
	// and its function key, computed once per profile, not per sample.
	lineKey := make([]rowKey, len(d.lines))
	lineFn := make([]rowKey, len(d.lines))
	var lineFocus, lineIgnore []bool
	if a.filter.focus != nil {
		lineFocus = make([]bool, len(d.lines))
	}
	if a.filter.ignore != nil {
		lineIgnore = make([]bool, len(d.lines))
	}
	fnName := make([]string, len(d.funcName))
	fnFile := make([]string, len(d.funcName))
	for i := range d.funcName {
		fnName[i] = string(d.strs[d.funcName[i]])
		fnFile[i] = string(d.strs[d.funcFile[i]])
	}
	for i, ln := range d.lines {
		name, file := "", ""
		if ln.fn >= 0 {
			name, file = fnName[ln.fn], fnFile[ln.fn]
		}
		if name == "" {
			name = "<unknown>"
		}
		lineFn[i] = a.fnKey(name)
		if IsGeneratedFile(file) {
			if a.generated == nil {
				a.generated = map[string]bool{}
			}
			a.generated[name] = true
		}
		if a.by == ByLine {
			lineKey[i] = a.key(name+"\x00"+file+"\x00"+strconv.FormatInt(ln.line, 10), name, file, ln.line)
		} else if a.by == ByFunction {
			lineKey[i] = a.key(name, name, "", 0)
		}
		if lineFocus != nil {
			lineFocus[i] = a.filter.focus.MatchString(name) || a.filter.focus.MatchString(file)
		}
		if lineIgnore != nil {
			lineIgnore[i] = a.filter.ignore.MatchString(name) || a.filter.ignore.MatchString(file)
		}
	}

	var total int64
	var stackBuf []byte
	var frames []rowKey
	sampleNo := int32(0)
	// seen stamps must not collide across the two sides.
	stampBase := int32(side) << 30
	err := d.forEachSample(vi, func(locs []int32, value int64) error {
		sampleNo++
		if value == 0 {
			return nil
		}
		if a.filter.active() {
			focused, ignored := lineFocus == nil, false
			for _, li := range locs {
				for l := d.locStart[li]; l < d.locStart[li+1]; l++ {
					if lineFocus != nil && lineFocus[l] {
						focused = true
					}
					if lineIgnore != nil && lineIgnore[l] {
						ignored = true
					}
				}
			}
			if !focused || ignored {
				return nil
			}
		}
		total += value
		if a.by == ByStack || a.sites != nil {
			frames = frames[:0]
			for _, li := range locs {
				for l := d.locStart[li]; l < d.locStart[li+1]; l++ {
					frames = append(frames, lineFn[l])
				}
			}
		}
		if a.by == ByStack {
			stackBuf = stackBuf[:0]
			for _, f := range frames {
				stackBuf = binary.LittleEndian.AppendUint32(stackBuf, uint32(f))
			}
			k, ok := a.keys[string(stackBuf)]
			if !ok {
				k = a.key(string(stackBuf), a.leakSiteOf(frames).function, "", 0)
				a.stacks = append(a.stacks, append([]rowKey(nil), frames...))
			}
			a.flat[k][side] += value
			a.cum[k][side] += value
		} else {
			stamp := stampBase | sampleNo
			for i, li := range locs {
				start, end := d.locStart[li], d.locStart[li+1]
				if i == 0 && start < end {
					a.flat[lineKey[start]][side] += value
				}
				for l := start; l < end; l++ {
					k := lineKey[l]
					if a.seen[k] != stamp {
						a.seen[k] = stamp
						a.cum[k][side] += value
					}
				}
			}
		}
		if a.sites != nil {
			a.addSite(frames, value, side)
		}
		return nil
	})
	return total, err
}

// rows returns the aggregated rows sorted by delta, largest growth
// first. In a diff, rows that did not change at all are left out.
func (a *aggregator) rows(diff bool) []DiffRow {
	out := []DiffRow{} // an empty diff is [] in JSON, not null
	for k := range a.names {
		f, c := a.flat[k], a.cum[k]
		if f == [2]int64{} && c == [2]int64{} {
			continue
		}
		if diff && f[0] == f[1] && c[0] == c[1] {
			continue
		}
		r := DiffRow{
			Function: a.names[k], File: a.files[k], Line: a.lineNums[k],
			Base: f[0], Current: f[1], Delta: f[1] - f[0],
			BaseCum: c[0], CurrentCum: c[1], DeltaCum: c[1] - c[0],
		}
		if a.by == ByStack {
			for _, fk := range a.stacks[k] {
				r.Stack = append(r.Stack, a.fnNames[fk])
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Delta != out[j].Delta {
			return out[i].Delta > out[j].Delta
		}
		if out[i].DeltaCum != out[j].DeltaCum {
			return out[i].DeltaCum > out[j].DeltaCum
		}
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return strings.Join(out[i].Stack, "\n") < strings.Join(out[j].Stack, "\n")
	})
	return out
}
