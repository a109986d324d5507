package testbin

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fatalRecorder keeps the message of the Fatalf that ends a test body.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	WaitFor(t, 10*time.Second, "the third check", func() bool { return n.Add(1) == 3 })
	if n.Load() != 3 {
		t.Errorf("checked %d times, want until the condition held (3)", n.Load())
	}
	r := &fatalRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitFor(r, 50*time.Millisecond, "something that never happens", func() bool { return false })
	}()
	<-done
	if !strings.Contains(r.msg, "waited 50ms for something that never happens") {
		t.Errorf("failure %q does not say what was awaited", r.msg)
	}
}
