package profiles

import "io"

// WaitState names the wait state a goroutine parked in function fn is in
// ("chan send", "select", "IO wait"...), as Go's goroutine dumps print it,
// and reports whether fn is one of the blocking frames that say so.
func WaitState(fn string) (string, bool) {
	w, ok := waitStates[fn]
	return w, ok
}

// WriteFileAtomic writes path through a temporary file in the same
// directory and renames it into place, so a reader or a crash never sees
// half a file. Reports (HTML, JSON) use it as the store does.
func WriteFileAtomic(path string, write func(io.Writer) error) error {
	return writeFileAtomic(path, write)
}
