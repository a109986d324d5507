package profiles

// WaitState names the wait state a goroutine parked in function fn is in
// ("chan send", "select", "IO wait"...), as Go's goroutine dumps print it,
// and reports whether fn is one of the blocking frames that say so.
func WaitState(fn string) (string, bool) {
	w, ok := waitStates[fn]
	return w, ok
}
