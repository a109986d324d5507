package escapes

import (
	"testing"
)

// Sinks keep the benchmarks' results alive so the compiler cannot drop the
// work being measured.
var (
	sinkPoint    Point
	sinkPointPtr *Point
	sinkInt      int
	sinkString   string
	sinkBytes    []byte
	sinkAny      []any
	sinkPoints   []Point
)

// lessonSize is the n passed to the slice lessons: larger than the
// compiler's 32-byte stack buffer for variable-size slices.
const lessonSize = 100

func BenchmarkPointer_Escapes(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		sinkPointPtr = NewPointPtr(i, i)
	}
}

func BenchmarkPointer_Value(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		sinkPoint = NewPointValue(i, i)
	}
}

func BenchmarkInterface_Boxed(b *testing.B) {
	dst := make([]any, 0, 1)
	for i := 0; b.Loop(); i++ {
		dst = AppendBoxed(dst[:0], Point{i, i})
	}
	sinkAny = dst
}

func BenchmarkInterface_Typed(b *testing.B) {
	dst := make([]Point, 0, 1)
	for i := 0; b.Loop(); i++ {
		dst = AppendTyped(dst[:0], Point{i, i})
	}
	sinkPoints = dst
}

func BenchmarkClosure_Captured(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		next := MakeCounter(i)
		sinkInt += next()
	}
}

func BenchmarkClosure_Struct(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		c := Counter{n: i}
		sinkInt += c.Next()
	}
}

func BenchmarkSlice_DynamicSize(b *testing.B) {
	for b.Loop() {
		sinkInt += SumOfSquaresDynamic(lessonSize)
	}
}

func BenchmarkSlice_ConstantSize(b *testing.B) {
	for b.Loop() {
		sinkInt += SumOfSquaresFixed(lessonSize)
	}
}

func BenchmarkFmt_Sprintf(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		sinkString = LabelSprintf(1000 + i)
	}
}

func BenchmarkFmt_AppendInt(b *testing.B) {
	buf := make([]byte, 0, 32)
	for i := 0; b.Loop(); i++ {
		buf = AppendLabel(buf[:0], 1000+i)
	}
	sinkBytes = buf
}

func BenchmarkGoroutine_Pointer(b *testing.B) {
	done := make(chan struct{})
	for i := 0; b.Loop(); i++ {
		sinkInt += SquareViaPointer(i, done)
	}
}

func BenchmarkGoroutine_Worker(b *testing.B) {
	s := NewSquarer()
	defer s.Close()
	for i := 0; b.Loop(); i++ {
		sinkInt += s.Square(i)
	}
}

// TestLessonsAllocate checks what the benchmarks teach: every leaky half
// allocates on each call and every fixed half does not. testing.AllocsPerRun
// counts real heap allocations, so a compiler that got smarter (or a lesson
// that stopped teaching) fails here.
func TestLessonsAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts; run without -race")
	}
	s := NewSquarer()
	defer s.Close()
	done := make(chan struct{})
	anyBuf := make([]any, 0, 1)
	pointBuf := make([]Point, 0, 1)
	byteBuf := make([]byte, 0, 32)
	tests := []struct {
		lesson string
		leaky  func()
		fixed  func()
	}{
		{"pointer to a local", func() { sinkPointPtr = NewPointPtr(1, 2) }, func() { sinkPoint = NewPointValue(1, 2) }},
		{"storing in an interface", func() { anyBuf = AppendBoxed(anyBuf[:0], Point{1, 2}) }, func() { pointBuf = AppendTyped(pointBuf[:0], Point{1, 2}) }},
		{"closure capturing a variable", func() { sinkInt += MakeCounter(1)() }, func() { c := Counter{n: 1}; sinkInt += c.Next() }},
		{"slice of run-time size", func() { sinkInt += SumOfSquaresDynamic(lessonSize) }, func() { sinkInt += SumOfSquaresFixed(lessonSize) }},
		{"fmt with a non-constant argument", func() { sinkString = LabelSprintf(12345) }, func() { byteBuf = AppendLabel(byteBuf[:0], 12345) }},
		{"pointer passed to a goroutine", func() { sinkInt += SquareViaPointer(3, done) }, func() { sinkInt += s.Square(3) }},
	}
	for _, tt := range tests {
		t.Run(tt.lesson, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.leaky); got < 1 {
				t.Errorf("leaky version: %.1f allocs/op, want at least 1", got)
			}
			if got := testing.AllocsPerRun(100, tt.fixed); got != 0 {
				t.Errorf("fixed version: %.1f allocs/op, want 0", got)
			}
		})
	}
}

func TestLessonsComputeTheSame(t *testing.T) {
	if got, want := *NewPointPtr(3, 4), NewPointValue(3, 4); got != want {
		t.Errorf("NewPointPtr = %v, NewPointValue = %v", got, want)
	}
	if a, b := SumOfSquaresDynamic(50), SumOfSquaresFixed(50); a != b {
		t.Errorf("SumOfSquaresDynamic = %d, SumOfSquaresFixed = %d", a, b)
	}
	if a, b := LabelSprintf(4321), string(AppendLabel(nil, 4321)); a != b {
		t.Errorf("LabelSprintf = %q, AppendLabel = %q", a, b)
	}
	next := MakeCounter(5)
	c := Counter{n: 5}
	if a, b := next(), c.Next(); a != b {
		t.Errorf("MakeCounter()() = %d, Counter.Next = %d", a, b)
	}
	s := NewSquarer()
	defer s.Close()
	if a, b := SquareViaPointer(7, make(chan struct{})), s.Square(7); a != b || a != 49 {
		t.Errorf("SquareViaPointer(7) = %d, Squarer.Square(7) = %d, want 49", a, b)
	}
	boxed := AppendBoxed(nil, Point{1, 2})
	typed := AppendTyped(nil, Point{1, 2})
	if boxed[0].(Point) != typed[0] {
		t.Errorf("AppendBoxed stored %v, AppendTyped %v", boxed[0], typed[0])
	}
}
