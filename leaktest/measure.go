package leaktest

import (
	"bytes"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/profiles"
)

// measurement is what one round left behind: live bytes per allocation
// stack (the whole process's; attribution happens when judging, once every
// goroutine the op started has been seen), and the goroutines by label.
type measurement struct {
	ops  int
	heap map[stackKey]int64
	// goroutines running under this check's label, by site.
	goroutines map[goroutineSite]int64
	// entry functions of goroutines under this check's label, and of all
	// others (no label, or another check's).
	ourEntries, otherEntries map[string]bool
}

type stackKey [32]uintptr

// stackInfo is what an allocation stack says, symbolized once per Check.
type stackInfo struct {
	slot      int    // the slot frame on the stack, -1 when none
	entry     string // outermost function: the goroutine's entry
	truncated bool   // the stack filled the record: its outer frames are lost
	// runtimePool is set for allocations the runtime keeps per goroutine
	// for reuse (g structs, their sleep timers, sudogs): their total
	// follows the peak number of goroutines alive at once, not the number
	// of operations, and goroutines that stay are caught as goroutines.
	runtimePool bool
	site        site
}

// site names where something was allocated or where a goroutine waits:
// the first frame of own code, leaf first.
type site struct {
	Function string
	File     string
	Line     int
	OwnCode  bool
}

type goroutineSite struct {
	site
	Wait string
}

const leaktestPkg = "github.com/leaklab/leaklab/leaktest."

// measure forces a collection and reads the heap and goroutine profiles.
func (c *checker) measure(heap bool) measurement {
	m := measurement{goroutines: map[goroutineSite]int64{}, ourEntries: map[string]bool{}, otherEntries: map[string]bool{}}
	if heap {
		// After runtime.GC returns, the memory profile is published as of
		// that collection: allocations are counted, frees of everything
		// unreachable then are too.
		runtime.GC()
		m.heap = readMemProfile()
	}
	c.readGoroutines(&m)
	return m
}

func readMemProfile() map[stackKey]int64 {
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs := make([]runtime.MemProfileRecord, n+64)
		var ok bool
		n, ok = runtime.MemProfile(recs, false)
		if !ok {
			continue
		}
		out := make(map[stackKey]int64, n)
		for _, r := range recs[:n] {
			out[r.Stack0] += r.InUseBytes()
		}
		return out
	}
}

// info symbolizes an allocation stack, caching the answer.
func (c *checker) info(k stackKey) *stackInfo {
	if si, ok := c.stacks[k]; ok {
		return si
	}
	si := &stackInfo{slot: -1}
	n := 0
	for n < len(k) && k[n] != 0 {
		n++
	}
	si.truncated = n == len(k)
	frames := runtime.CallersFrames(k[:n])
	var fs []frameName
	for {
		f, more := frames.Next()
		if f.Function != "" {
			fs = append(fs, frameName{f.Function, f.File, f.Line})
			if s, ok := slotIndex(f.Function); ok && si.slot < 0 {
				si.slot = s
			}
		}
		if !more {
			break
		}
	}
	si.entry = entryOf(fs)
	si.site = c.siteOf(fs)
	si.runtimePool = runtimePoolAlloc(fs)
	c.stacks[k] = si
	return si
}

type frameName struct {
	fn   string
	file string
	line int
}

func slotIndex(fn string) (int, bool) {
	rest, ok := strings.CutPrefix(fn, leaktestPkg+"slot")
	if !ok || len(rest) != 2 || rest[0] < '0' || rest[0] > '9' || rest[1] < '0' || rest[1] > '9' {
		return 0, false
	}
	return int(rest[0]-'0')*10 + int(rest[1]-'0'), true
}

// runtimePoolFuncs allocate what the runtime keeps for reuse once a
// goroutine exits.
var runtimePoolFuncs = map[string]bool{
	"runtime.malg": true, "runtime.newproc1": true, "runtime.allgadd": true,
	"runtime.acquireSudog": true,
	"time.Sleep":           true, // the goroutine's own timer, kept with its g
}

// runtimePoolAlloc reports whether an allocation stack (leaf first) is the
// runtime's per-goroutine state: a pool function among its leading
// runtime frames.
func runtimePoolAlloc(fs []frameName) bool {
	for _, f := range fs {
		if runtimePoolFuncs[f.fn] {
			return true
		}
		if !strings.HasPrefix(f.fn, "runtime.") && !strings.HasPrefix(f.fn, "internal/runtime/") {
			return false
		}
	}
	return false
}

// entryOf is the function a goroutine started in: the outermost frame
// below runtime.goexit.
func entryOf(fs []frameName) string {
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].fn != "runtime.goexit" {
			return fs[i].fn
		}
	}
	return ""
}

// siteOf names a stack (leaf first) after its first frame of own code,
// leaktest's own frames excluded; with none, after its first frame outside
// the runtime.
func (c *checker) siteOf(fs []frameName) site {
	var fallback *frameName
	for i := range fs {
		f := &fs[i]
		if strings.HasPrefix(f.fn, leaktestPkg) {
			continue
		}
		if c.cfg.own.Match(f.fn) {
			return site{Function: f.fn, File: f.file, Line: f.line, OwnCode: true}
		}
		if fallback == nil && !strings.HasPrefix(f.fn, "runtime.") && !strings.HasPrefix(f.fn, "internal/") {
			fallback = f
		}
	}
	if fallback == nil && len(fs) > 0 {
		fallback = &fs[0]
	}
	if fallback == nil {
		return site{Function: "(unknown)"}
	}
	return site{Function: fallback.fn, File: fallback.file, Line: fallback.line}
}

// readGoroutines counts the goroutines under this check's label by site,
// and notes every goroutine's entry function.
func (c *checker) readGoroutines(m *measurement) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 0); err != nil {
		panic("leaktest: writing the goroutine profile: " + err.Error())
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		panic("leaktest: reading the goroutine profile: " + err.Error())
	}
	for _, s := range p.Sample {
		var fs []frameName
		for _, loc := range s.Location {
			for _, ln := range loc.Line {
				if ln.Function != nil {
					fs = append(fs, frameName{ln.Function.Name, ln.Function.Filename, int(ln.Line)})
				}
			}
		}
		entry := entryOf(fs)
		labels := s.Label[LabelKey]
		if len(labels) == 0 || labels[0] != c.label {
			m.otherEntries[entry] = true
			continue
		}
		m.ourEntries[entry] = true
		gs := goroutineSite{site: c.siteOf(fs)}
		for _, f := range fs {
			if w, ok := profiles.WaitState(f.fn); ok {
				gs.Wait = w
				break
			}
		}
		m.goroutines[gs] += s.Value[0]
	}
}
