// Package escapes is the heap-versus-stack lesson: six common reasons a Go
// value escapes to the heap, each as a pair of functions that do the same
// work, the first letting the value escape and the second keeping it on the
// stack (or off the per-call path). The benchmarks in escapes_test.go show
// the price in allocations per operation:
//
//	go test -run '^$' -bench . -benchmem ./leaks/escapes
//
// and 'leaklab escape ./leaks/escapes' shows the compiler's reason for each
// escape. The leaky half of every pair is marked //go:noinline where the
// lesson needs it: inlining lets the compiler see the caller and sometimes
// keep the value on the stack after all, which is itself worth knowing but
// would hide the lesson in the benchmark.
package escapes

import (
	"fmt"
	"strconv"
)

// Point is a small value type used by the lessons.
type Point struct{ X, Y int }

// Lesson 1: returning a pointer to a local.

// NewPointPtr returns a pointer to a local variable. The variable must
// outlive the call, so the compiler moves it to the heap.
//
//go:noinline
func NewPointPtr(x, y int) *Point {
	p := Point{X: x, Y: y}
	return &p
}

// NewPointValue returns the value itself: it is copied into the caller's
// frame and nothing is allocated.
//
//go:noinline
func NewPointValue(x, y int) Point {
	return Point{X: x, Y: y}
}

// Lesson 2: storing in an interface.

// AppendBoxed stores a Point in a []any. An interface holds a pointer to
// its data, and since the slice outlives the call the Point is copied to
// the heap ("p escapes to heap").
//
//go:noinline
func AppendBoxed(dst []any, p Point) []any {
	return append(dst, p)
}

// AppendTyped stores the Point in a []Point: the value is copied into the
// slice's existing backing array with no allocation.
//
//go:noinline
func AppendTyped(dst []Point, p Point) []Point {
	return append(dst, p)
}

// Lesson 3: closures capturing variables.

// MakeCounter returns a closure that captures n by reference. Both the
// closure and n outlive the call, so both go to the heap.
//
//go:noinline
func MakeCounter(start int) func() int {
	n := start
	return func() int {
		n++
		return n
	}
}

// Counter is the same state as an explicit value: the caller decides where
// it lives, and a local Counter stays on the caller's stack.
type Counter struct{ n int }

// Next increments and returns the counter.
func (c *Counter) Next() int {
	c.n++
	return c.n
}

// Lesson 4: slices whose size is not known at compile time.

// SumOfSquaresDynamic makes a scratch slice of n elements. The size is only
// known at run time, so past the compiler's small fixed buffer the backing
// array comes from the heap.
//
//go:noinline
func SumOfSquaresDynamic(n int) int {
	scratch := make([]int, n)
	for i := range scratch {
		scratch[i] = i * i
	}
	return sum(scratch)
}

// maxScratch bounds SumOfSquaresFixed's input, so its scratch space can be
// an array of constant size.
const maxScratch = 256

// SumOfSquaresFixed uses an array of constant size and slices it to n: the
// array lives in the frame. n must not exceed maxScratch.
//
//go:noinline
func SumOfSquaresFixed(n int) int {
	var buf [maxScratch]int
	scratch := buf[:n]
	for i := range scratch {
		scratch[i] = i * i
	}
	return sum(scratch)
}

func sum(xs []int) int {
	total := 0
	for _, x := range xs {
		total += x
	}
	return total
}

// Lesson 5: fmt with non-constant arguments.

// LabelSprintf formats with fmt: its arguments are ...any, fmt keeps them
// beyond what escape analysis can follow, so id is boxed on the heap, and
// the result string is allocated too.
//
//go:noinline
func LabelSprintf(id int) string {
	return fmt.Sprintf("user-%d", id)
}

// AppendLabel formats into a buffer the caller owns, with strconv: no
// boxing and, when the buffer has room, no allocation at all.
//
//go:noinline
func AppendLabel(dst []byte, id int) []byte {
	dst = append(dst, "user-"...)
	return strconv.AppendInt(dst, int64(id), 10)
}

// Lesson 6: passing a pointer into a goroutine.

// SquareViaPointer starts a goroutine that writes into a local through a
// pointer. The goroutine may outlive the frame as far as the compiler can
// tell, so the local moves to the heap, and the go statement's arguments
// are packed into a heap-allocated closure as well.
//
//go:noinline
func SquareViaPointer(x int, done chan struct{}) int {
	var result int
	go squareInto(&result, x, done)
	<-done
	return result
}

func squareInto(dst *int, x int, done chan<- struct{}) {
	*dst = x * x
	done <- struct{}{}
}

// Squarer is a long-lived worker: values go in and out over channels, so
// nothing on the caller's stack is shared and no goroutine is started per
// call.
type Squarer struct {
	in, out chan int
}

// NewSquarer starts the worker; Close stops it.
func NewSquarer() *Squarer {
	s := &Squarer{in: make(chan int), out: make(chan int)}
	go s.loop()
	return s
}

func (s *Squarer) loop() {
	for x := range s.in {
		s.out <- x * x
	}
	close(s.out)
}

// Square sends x to the worker and returns its square.
func (s *Squarer) Square(x int) int {
	s.in <- x
	return <-s.out
}

// Close stops the worker and waits for it to finish.
func (s *Squarer) Close() {
	close(s.in)
	for range s.out {
	}
}
