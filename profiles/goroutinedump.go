package profiles

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The goroutine profile in pprof's format counts goroutines by stack and
// cannot tell one goroutine from another. The text dump
// (/debug/pprof/goroutine?debug=2) names each goroutine by its ID, which
// shows which goroutines came and which left between two snapshots: a
// leak's goroutines arrive and never leave, while a healthy site's
// long-lived goroutines leave as others arrive, even while the count
// happens to wander up.

// DumpedGoroutine is one goroutine of a goroutine dump.
type DumpedGoroutine struct {
	ID int64
	// WaitState is the wait reason the header gives ("chan receive"),
	// without its duration; "" when the goroutine is not waiting
	// (running, runnable, in a system call) or waits for a reason the
	// pprof-format sites do not name, so that both name sites alike.
	WaitState string
	// Functions are the stack's function names, leaf first, as the
	// profile's would be (arguments dropped; the runtime's own frames are
	// not in a dump).
	Functions []string
}

// MaxDumpBytes bounds a goroutine dump read by ReadGoroutineDump: about
// 1.5 KB a goroutine, so some forty thousand goroutines.
const MaxDumpBytes = 64 << 20

// knownWaitStates are the wait reasons pprof-format sites carry
// (WaitState's names), as a dump's headers spell them.
var knownWaitStates = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range waitStates {
		m[w] = true
	}
	return m
}()

// ReadGoroutineDump parses a goroutine dump as runtime.Stack(all) and
// /debug/pprof/goroutine?debug=2 write it, reading at most limit bytes
// (MaxDumpBytes when 0): past that it fails rather than judge a part.
func ReadGoroutineDump(r io.Reader, limit int64) ([]DumpedGoroutine, error) {
	if limit <= 0 {
		limit = MaxDumpBytes
	}
	lr := &io.LimitedReader{R: r, N: limit + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []DumpedGoroutine
	var cur *DumpedGoroutine
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "goroutine "):
			g, err := parseDumpHeader(line)
			if err != nil {
				return nil, err
			}
			out = append(out, g)
			cur = &out[len(out)-1]
		case line == "" || strings.HasPrefix(line, "\t") || cur == nil:
			// file:line of the frame above, or between goroutines
		case strings.HasPrefix(line, "created by "), strings.HasPrefix(line, "...additional frames elided..."):
			// the creator is not on the goroutine's stack
		default:
			name := line
			if i := strings.LastIndexByte(name, '('); i > 0 {
				name = name[:i]
			}
			cur.Functions = append(cur.Functions, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the goroutine dump: %w", err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("the goroutine dump is larger than %d bytes, the limit", limit)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("not a goroutine dump: no \"goroutine N [state]:\" header")
	}
	return out, nil
}

// parseDumpHeader reads "goroutine 7 [chan receive, 2 minutes]:".
func parseDumpHeader(line string) (DumpedGoroutine, error) {
	rest := strings.TrimPrefix(line, "goroutine ")
	idText, rest, ok := strings.Cut(rest, " ")
	id, err := strconv.ParseInt(idText, 10, 64)
	open, end := strings.IndexByte(rest, '['), strings.LastIndexByte(rest, ']')
	if !ok || err != nil || open < 0 || end < open {
		return DumpedGoroutine{}, fmt.Errorf("not a goroutine dump: bad header %q", line)
	}
	state, _, _ := strings.Cut(rest[open+1:end], ",")
	if !knownWaitStates[state] {
		state = ""
	}
	return DumpedGoroutine{ID: id, WaitState: state}, nil
}

// FetchGoroutineDump asks a live service for its goroutine dump
// (/debug/pprof/goroutine?debug=2) and parses it; target is a base URL as
// ProfileURL takes it.
func FetchGoroutineDump(ctx context.Context, target string, timeout time.Duration) ([]DumpedGoroutine, error) {
	_, base, _, err := ProfileURL(target, FetchOptions{})
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dumpURL := base + "/debug/pprof/goroutine?debug=2"
	resp, err := getOK(ctx, newClient(), dumpURL, timeout, TypeGoroutine)
	if err != nil {
		return nil, &FetchError{URL: dumpURL, Err: err}
	}
	defer resp.Body.Close()
	gs, err := ReadGoroutineDump(resp.Body, MaxDumpBytes)
	if err != nil {
		if ctx.Err() != nil {
			err = describeNetError(ctx, err, timeout)
		}
		return nil, &FetchError{URL: dumpURL, Err: err}
	}
	return gs, nil
}
