package profiles

import (
	"sort"
	"strings"
)

// waitStates maps the runtime and standard-library frames a parked
// goroutine sits in to the wait state Go's own goroutine dumps print
// ("goroutine 7 [chan send]"). The protobuf goroutine profile carries no
// wait reason, so it is recovered from these frames.
var waitStates = map[string]string{
	"runtime.chansend":                                 "chan send",
	"runtime.chansend1":                                "chan send",
	"runtime.chanrecv":                                 "chan receive",
	"runtime.chanrecv1":                                "chan receive",
	"runtime.chanrecv2":                                "chan receive",
	"runtime.selectgo":                                 "select",
	"runtime.block":                                    "select (no cases)",
	"runtime.semacquire1":                              "semacquire",
	"sync.runtime_Semacquire":                          "semacquire",
	"sync.runtime_SemacquireWaitGroup":                 "sync.WaitGroup.Wait",
	"sync.runtime_SemacquireMutex":                     "sync.Mutex.Lock",
	"sync.runtime_SemacquireRWMutex":                   "sync.RWMutex.Lock",
	"sync.runtime_SemacquireRWMutexR":                  "sync.RWMutex.RLock",
	"sync.runtime_notifyListWait":                      "sync.Cond.Wait",
	"internal/poll.runtime_pollWait":                   "IO wait",
	"time.Sleep":                                       "sleep",
	"runtime.gcBgMarkWorker":                           "GC worker (idle)",
	"runtime.forcegchelper":                            "force gc (idle)",
	"runtime.bgsweep":                                  "GC sweep wait",
	"runtime.bgscavenge":                               "GC scavenge wait",
	"runtime.runfinq":                                  "finalizer wait",
	"os/signal.signal_recv":                            "signal wait",
	"runtime/pprof.runtime_goroutineProfileWithLabels": "running (profiling)",
}

// isStdlibFunc says whether a function belongs to the Go distribution:
// its import path's first element has no dot (runtime, net/http,
// internal/poll), and it is not package main.
func isStdlibFunc(name string) bool {
	pkg := name
	// The package path ends at the first dot after the last slash.
	slash := strings.LastIndexByte(pkg, '/')
	if i := strings.IndexByte(pkg[slash+1:], '.'); i >= 0 {
		pkg = pkg[:slash+1+i]
	}
	first, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(first, ".") && first != "main"
}

// leakSiteOf names a stack's leak site by the one rule watch names its
// suspects by (SiteName); a goroutine whose frames show no wait state is
// "running or other".
func (a *aggregator) leakSiteOf(frames []rowKey) siteKey {
	var site siteKey
	isOwn := func(fn string) bool { return a.own.Match(fn) && !a.generated[fn] }
	site.function, site.wait, _ = SiteName(isOwn, a.sites != nil, len(frames), func(i int) string { return a.fnNames[frames[i]] })
	if site.wait == "" {
		site.wait = "running or other"
	}
	return site
}

func (a *aggregator) addSite(frames []rowKey, value int64, side int) {
	k := a.leakSiteOf(frames)
	s := a.sites[k]
	if s == nil {
		s = &LeakSite{Function: k.function, WaitState: k.wait}
		for _, f := range frames {
			s.Stack = append(s.Stack, a.fnNames[f])
		}
		a.sites[k] = s
	}
	if side == 0 {
		s.Base += value
	} else {
		s.Current += value
	}
	s.Delta = s.Current - s.Base
}

// leakSites returns the sites sorted by growth; in a diff, sites whose
// count did not change are left out.
func (a *aggregator) leakSites(diff bool) []LeakSite {
	out := make([]LeakSite, 0, len(a.sites))
	for _, s := range a.sites {
		if diff && s.Delta == 0 {
			continue
		}
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Delta != out[j].Delta {
			return out[i].Delta > out[j].Delta
		}
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].WaitState < out[j].WaitState
	})
	return out
}
