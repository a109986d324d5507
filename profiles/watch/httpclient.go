package watch

import (
	"sort"
	"strings"
)

// A goroutine leak with no own code on its stack is most often an HTTP
// client connection kept open: a response body never closed pins its
// connection, and each pinned connection parks a read and a write
// goroutine in net/http's connection loops, started by the transport, far
// from the code that made the request. The goroutine profile cannot say
// whose requests those were; the heap profile can, since the request's
// allocations carry the caller's stack. The detector keeps, from every
// heap snapshot, how much each own-code function allocated through the
// HTTP client, and names a growing pool of client connections after the
// functions that made the requests.

// clientConnLoops are the start functions of the goroutines each open
// client connection costs.
var clientConnLoops = map[string]bool{
	"net/http.(*persistConn).readLoop":  true,
	"net/http.(*persistConn).writeLoop": true,
}

// maxHTTPCallers is how many calling functions a suspect lists.
const maxHTTPCallers = 3

// HTTPCaller is own code that sends requests through net/http's client.
type HTTPCaller struct {
	Function string `json:"function"`
	// Share is its part of the bytes all own code allocated through the
	// HTTP client (alloc_space, sampled), from 0 to 1.
	Share float64 `json:"share"`
}

// isHTTPClientCall says whether fn is net/http's client machinery that an
// application calls to send a request.
func isHTTPClientCall(fn string) bool {
	return strings.HasPrefix(fn, "net/http.(*Client).") || fn == "net/http.(*Transport).RoundTrip" ||
		fn == "net/http.Get" || fn == "net/http.Post" || fn == "net/http.Head" || fn == "net/http.PostForm"
}

// httpCallerOf returns the own-code function that called the HTTP client
// in a heap sample's stack (leaf first), or "" when the sample was not
// allocated on the way through the client. The heap snapshots feed it as
// they are added (Detector.add), so the latest cumulative alloc_space by
// caller is kept.
func (d *Detector) httpCallerOf(stack []string) string {
	inClient := false
	for _, fn := range stack {
		switch {
		case isHTTPClientCall(fn):
			inClient = true
		case inClient && d.Own.Match(fn):
			return fn
		}
	}
	return ""
}

// topHTTPCallers returns the own-code functions that sent the most through
// the HTTP client, by their share of the bytes allocated on the way.
func (d *Detector) topHTTPCallers() []HTTPCaller {
	total := 0.0
	for _, v := range d.httpCallers {
		total += v
	}
	if total <= 0 {
		return nil
	}
	var out []HTTPCaller
	for fn, v := range d.httpCallers {
		out = append(out, HTTPCaller{Function: fn, Share: round(v / total)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Share != out[j].Share {
			return out[i].Share > out[j].Share
		}
		return out[i].Function < out[j].Function
	})
	return out[:min(len(out), maxHTTPCallers)]
}

// nameClientConnections renames goroutine suspects that are HTTP client
// connection loops, with no own code on their stacks, after the own code
// that sends HTTP requests, and keeps one suspect per connection pool (a
// connection's read and write loops grow together).
func (d *Detector) nameClientConnections(suspects []Suspect) []Suspect {
	callers := d.topHTTPCallers()
	if len(callers) == 0 {
		return suspects
	}
	out := suspects[:0]
	named := false
	for _, s := range suspects {
		if s.Kind != KindGoroutine || s.OwnCode || !clientConnLoops[s.Function] {
			out = append(out, s)
			continue
		}
		if named { // the other loop of the same connections
			continue
		}
		named = true
		s.Connections = s.Function
		s.Function = callers[0].Function
		s.HTTPCallers = callers
		out = append(out, s)
	}
	return out
}
