package profiles

import "strings"

// SiteName is the one rule that names a leak site, shared by diff's leak
// sites and watch's suspects, so both name the same goroutines (and heap
// stacks) alike. Given a stack of n frames, leaf first (frame(i) returns
// the function name of the i-th), it returns:
//
//   - the first frame of the target's own code (own), leaf first, inlined
//     frames included;
//   - for a stack with no own code: for goroutines, the first library
//     frame outside the standard library (a pool's Acquire, where the
//     goroutine waits), else the function the goroutine started in, its
//     outermost frame outside the runtime (net/http.(*conn).serve says
//     more than the read it is blocked in); for heap stacks, the first
//     frame outside the runtime and the blocking frames (where it
//     allocated);
//   - for goroutines, the wait state its blocking frames show ("" when
//     none does).
//
// isOwn says which functions are own code: OwnCode.Match, less the
// functions of generated files (IsGeneratedFile), which nobody fixes by
// hand: a leak "in" a protobuf Marshal is its caller's.
func SiteName(isOwn func(string) bool, goroutine bool, n int, frame func(int) string) (function, wait string, own bool) {
	fallback, library := "", ""
	for i := 0; i < n; i++ {
		fn := frame(i)
		if goroutine && wait == "" {
			if w, ok := waitStates[fn]; ok {
				wait = w
			}
		}
		if function == "" && isOwn(fn) {
			function = fn
			if !goroutine || wait != "" {
				break
			}
		}
		if function == "" && !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/") &&
			!strings.HasPrefix(fn, "sync.runtime_") {
			if _, blocking := waitStates[fn]; !blocking && (fallback == "" || goroutine) {
				fallback = fn
				if goroutine && library == "" && !isStdlibFunc(fn) {
					library = fn
				}
			}
		}
	}
	if function != "" {
		return function, wait, true
	}
	function = fallback
	if library != "" {
		function = library
	}
	if function == "" && n > 0 {
		function = frame(n - 1)
	}
	return function, wait, false
}

// IsGeneratedFile says whether a source file is generated code (protobuf,
// gRPC gateway, code generators' _gen.go and zz_generated files): its
// functions are never named as a leak site, their callers are.
func IsGeneratedFile(file string) bool {
	base := file[strings.LastIndexByte(file, '/')+1:]
	return strings.HasSuffix(base, ".pb.go") || strings.HasSuffix(base, ".pb.gw.go") ||
		strings.HasSuffix(base, "_gen.go") || strings.HasSuffix(base, ".gen.go") || strings.HasPrefix(base, "zz_generated")
}
