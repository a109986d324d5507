// Package retainers answers "who keeps this memory alive" for a live Go
// process on this machine: it attaches with ptrace (through delve's
// libraries), stops the process, walks its heap from the roots (global
// variables, every goroutine's stack frames, the data and bss sections,
// finalizers and cleanups), following typed pointers from the binary's
// DWARF, counts each reachable heap object once on the shortest reference
// chain that reaches it, then resumes and detaches.
//
// The result is a Report (chains root first, with the bytes and objects
// each one holds) and a pprof profile of type "retainers" whose stacks are
// those chains, stored reversed (leaf first, as pprof stacks are) so that
// pprof's views read root to leaf. It sits beside fetch in the data flow:
// live process → Scan → store → diff/watch → render.
package retainers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Defaults for Options.
const (
	// DefaultMaxPause is the longest the target may be stopped unless the
	// caller allows more.
	DefaultMaxPause = 2 * time.Second
	// DefaultMaxDepth is how many hops a chain keeps; deeper objects count
	// on the chain's last hop.
	DefaultMaxDepth = 24
	// scanBytesPerSecond is the resident memory a scan gets through per
	// second of pause: about 100 MiB/s was measured on a busy 2-core
	// machine (docs/retainers.md); an idle one is faster, so the estimate
	// errs towards refusing.
	scanBytesPerSecond = 100 << 20
	// goroutineSeconds is the pause per goroutine: unwinding its stack and
	// reading its frames' variables (1.5 ms measured with 5,000 goroutines
	// on the same busy machine).
	goroutineSeconds = 0.0015
	// attachSeconds is the fixed part of a pause: stopping the threads,
	// listing goroutines and unwinding their stacks.
	attachSeconds = 0.3
)

// Options tune a scan.
type Options struct {
	// MaxPause refuses to attach when the estimated pause is longer; 0
	// means no limit.
	MaxPause time.Duration
	// MaxDepth bounds chain length (DefaultMaxDepth when 0).
	MaxDepth int
	// Progress, when set, receives one-line progress messages.
	Progress func(msg string)
	// HoldAttached keeps the target stopped this long after attaching,
	// before walking; tests use it to kill leaklab mid-scan.
	HoldAttached time.Duration
}

// Chain is one reference chain and the heap it holds: the objects first
// reached through it (each object counts on one chain only).
type Chain struct {
	Chain   []string `json:"chain"` // root first
	Bytes   int64    `json:"bytes"`
	Objects int64    `json:"objects"`
	// AllocatedIn is, for the objects of this chain the heap profile
	// sampled (one every 512 KiB allocated, by default), their bytes by
	// every function of their allocation stacks: what ties a chain to a
	// heap profile's allocation site. Unscaled: a share, not a size.
	AllocatedIn map[string]int64 `json:"-"`
	// SampledBytes is the bytes of those sampled objects.
	SampledBytes int64 `json:"-"`
}

// Report is the result of a scan.
type Report struct {
	PID          int     `json:"pid"`
	Command      string  `json:"command"`
	GoVersion    string  `json:"go_version"`
	PauseSeconds float64 `json:"pause_seconds"`
	// HeapBytes is what the runtime counts as allocated (live objects and
	// not yet swept garbage), as MemStats.HeapAlloc.
	HeapBytes uint64 `json:"heap_bytes"`
	// BytesAttributed is the heap reachable from the roots.
	BytesAttributed int64 `json:"bytes_attributed"`
	Roots           int   `json:"roots"`
	// PhaseSeconds is where the pause went: spans, goroutines, globals,
	// walk (typed), untyped.
	PhaseSeconds map[string]float64 `json:"phase_seconds"`
	Goroutines   int                `json:"goroutines"`
	// Finalizers and Cleanups are the objects with a finalizer and the
	// cleanups found (roots of "finalizer of" and "cleanup of" chains);
	// SampledObjects the live objects the heap profile sampled. Specials
	// says why they were not read, when they were not.
	Finalizers     int    `json:"finalizers"`
	Cleanups       int    `json:"cleanups"`
	SampledObjects int    `json:"sampled_objects"`
	SpecialsOff    string `json:"specials_off,omitempty"`
	// Chains are sorted by bytes, largest first.
	Chains []Chain   `json:"chains"`
	Time   time.Time `json:"time"`
}

// ErrPtraceDenied is wrapped by the error of an attach the kernel refused.
var ErrPtraceDenied = errors.New("ptrace denied")

// EstimatePause guesses how long a scan would stop a process, from its
// resident memory (an upper bound of its heap) and its goroutines.
func EstimatePause(rssBytes int64, goroutines int) time.Duration {
	return time.Duration((attachSeconds + float64(rssBytes)/scanBytesPerSecond + float64(goroutines)*goroutineSeconds) * float64(time.Second))
}

// Scan attaches to pid, walks its heap and detaches. The target is
// resumed and detached on every path: errors, ctx cancellation, a panic
// in the walk; and a guard process resumes it if leaklab itself dies.
func Scan(ctx context.Context, pid int, opts Options) (rep *Report, err error) {
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	t, err := inspect(pid)
	if err != nil {
		return nil, err
	}
	types, err := loadTypeIndex(t.exe)
	if err != nil {
		return nil, fmt.Errorf("PID %d (%s): %w", pid, t.name, err)
	}
	types.bias = pieBias(pid, t.exe)
	goroutines := types.goroutineCount(vmReader{pid: pid})
	if est := EstimatePause(t.rssBytes, goroutines); opts.MaxPause > 0 && est > opts.MaxPause {
		return nil, refusef("PID %d (%s) uses %d MiB and has %d goroutines; stopping it for a scan would take about %.1fs, over --max-pause %s (raise it, or --max-pause 0 for no limit)",
			pid, t.name, t.rssBytes>>20, goroutines, est.Seconds(), opts.MaxPause)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	g, err := startGuard(pid)
	if err != nil {
		return nil, fmt.Errorf("cannot start the resume guard: %w", err)
	}
	defer g.release()

	progress(fmt.Sprintf("reading the debug info of PID %d (%s, %s)", pid, t.name, t.goVersion))
	sp := newSeizedProcess(pid)
	_, tgt, err := sp.target()
	if err != nil {
		return nil, fmt.Errorf("PID %d (%s): reading its binary: %v", pid, t.name, err)
	}
	s := &scanner{ctx: ctx, tgt: tgt, types: types, maxDepth: opts.MaxDepth}
	if err := s.prepare(); err != nil {
		return nil, fmt.Errorf("PID %d (%s): %w", pid, t.name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	var pause time.Duration
	detached := false
	detach := func() error {
		if detached {
			return nil
		}
		detached = true
		derr := sp.detach()
		pause = time.Since(start)
		return derr
	}
	defer func() {
		if r := recover(); r != nil {
			detach()
			err = fmt.Errorf("internal error while scanning PID %d: %v", pid, r)
		}
	}()
	defer func() {
		if derr := detach(); derr != nil && err == nil {
			err = fmt.Errorf("detaching from PID %d: %v", pid, derr)
		}
	}()
	if err := sp.stop(); err != nil {
		if errors.Is(err, ErrPtraceDenied) {
			return nil, fmt.Errorf("cannot attach to PID %d (%s): %w; run as root, or as its user with kernel.yama.ptrace_scope=0, or with CAP_SYS_PTRACE", pid, t.name, err)
		}
		return nil, fmt.Errorf("cannot stop PID %d (%s): %w", pid, t.name, err)
	}
	tgt.ClearCaches()
	attachDone := time.Now()
	progress(fmt.Sprintf("attached; scanning the heap of PID %d", pid))
	if opts.HoldAttached > 0 {
		select {
		case <-time.After(opts.HoldAttached):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	rep, err = s.scan()
	if err != nil {
		return nil, fmt.Errorf("scanning PID %d (%s): %w", pid, t.name, err)
	}
	detachStart := time.Now()
	if err := detach(); err != nil {
		return nil, fmt.Errorf("detaching from PID %d: %v", pid, err)
	}
	rep.PhaseSeconds["attach"] = attachDone.Sub(start).Seconds()
	rep.PhaseSeconds["detach"] = time.Since(detachStart).Seconds()
	progress(fmt.Sprintf("detached from PID %d after %s", pid, pause.Round(time.Millisecond)))
	rep.PID, rep.Command, rep.GoVersion = pid, t.name, t.goVersion
	rep.PauseSeconds = pause.Seconds()
	rep.Time = start.UTC()
	return rep, nil
}

// chains lists every chain that holds something, largest first.
func (w *walker) chains(allocs map[int32]map[string]int64, sampled map[int32]int64) ([]Chain, int64) {
	var out []Chain
	var total int64
	for i := 1; i < len(w.nodes); i++ {
		n := &w.nodes[i]
		if n.objects == 0 {
			continue
		}
		total += n.bytes
		var labels []string
		for j := int32(i); j > 0; j = w.nodes[j].parent {
			labels = append(labels, w.nodes[j].label)
		}
		for a, b := 0, len(labels)-1; a < b; a, b = a+1, b-1 {
			labels[a], labels[b] = labels[b], labels[a]
		}
		out = append(out, Chain{Chain: labels, Bytes: n.bytes, Objects: n.objects, AllocatedIn: allocs[int32(i)], SampledBytes: sampled[int32(i)]})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return strings.Join(out[i].Chain, "\x00") < strings.Join(out[j].Chain, "\x00")
	})
	return out, total
}
