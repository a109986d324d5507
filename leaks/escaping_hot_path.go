package leaks

import (
	"fmt"
	"net/http"
	"strconv"
)

func init() {
	register(&Service{
		Name:    "escaping-hot-path",
		Kind:    KindAlloc,
		Summary: "The statistics endpoint allocates a few hundred objects per request, so the GC runs many times a second under load and tail latency suffers.",
		Hints: []string{
			"The allocs profile (alloc_objects) puts one function on top: short-lived values that could have lived on its stack escape to the heap. New to heap versus stack? The lesson package leaks/escapes shows the usual reasons, each with a benchmark: go test -run '^$' -bench . -benchmem ./leaks/escapes",
			"Ask the compiler why, for that function only: leaklab escape ./leaks --func 'summarize$' --kind moved-to-heap,escapes. Each sample is boxed into an interface, a pointer to a local is kept in a slice, and every label is built with fmt.Sprintf.",
			"Keep values concrete and on the stack: a fixed-size array of structs, strconv.AppendInt into a stack buffer, no interface boxing in the loop (lessons 2, 4 and 5 in leaks/escapes; -bench 'Interface|Slice|Fmt'). Rerun leaklab escape on summarize: the loop's escapes should be gone.",
		},
		Culprit:   pkgPath + ".(*statsService).summarize",
		Profile:   "allocs",
		Endpoints: []Endpoint{{Method: "GET", Path: "/stats?n=64&seed={i}", Doc: "summarises n samples"}},
		Symptom:   Symptom{Metric: "go_gc_heap_allocs_objects_total", PerRequest: true, Leaky: 120, Fixed: 80},
		Explanation: "Values escape to the heap when the compiler cannot prove they die with the function: storing a pointer " +
			"in a slice that outlives the loop body, converting to an interface, and passing arguments to fmt all " +
			"do it. The fixed variant does the same arithmetic on a stack array and formats with strconv.",
		build: func(env *Env) (http.Handler, error) {
			s := &statsService{env: env}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /stats", s.serveStats)
			return mux, nil
		},
	})
}

type sample struct {
	index int
	value int64
}

type statsService struct{ env *Env }

func (s *statsService) serveStats(w http.ResponseWriter, r *http.Request) {
	n := min(max(queryInt(r, "n", 64), 1), maxSamples)
	seed := queryInt(r, "seed", 1)
	var out []byte
	if s.env.Fixed {
		out = s.summarizeOnStack(n, seed)
	} else {
		out = s.summarize(n, seed)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(out)
}

const maxSamples = 256

func sampleValue(seed, i int) int64 { return int64((seed*31+i*17)%1000 - 500) }

// summarize computes the sum and extremes of n samples, allocating as it goes.
func (s *statsService) summarize(n, seed int) []byte {
	samples := make([]any, 0, 8)
	for i := range n {
		p := &sample{index: i, value: sampleValue(seed, i)}
		samples = append(samples, p)
	}
	var sum, lo, hi int64
	labels := make([]string, 0, 8)
	for _, v := range samples {
		p := v.(*sample)
		sum += p.value
		lo, hi = min(lo, p.value), max(hi, p.value)
		labels = append(labels, fmt.Sprintf("s%d=%d", p.index, p.value))
	}
	return fmt.Appendf(nil, "n=%d sum=%d min=%d max=%d first=%s\n", n, sum, lo, hi, labels[0])
}

// summarizeOnStack computes the same summary without heap allocations in the loop.
func (s *statsService) summarizeOnStack(n, seed int) []byte {
	var samples [maxSamples]sample
	for i := range n {
		samples[i] = sample{index: i, value: sampleValue(seed, i)}
	}
	var sum, lo, hi int64
	for _, p := range samples[:n] {
		sum += p.value
		lo, hi = min(lo, p.value), max(hi, p.value)
	}
	var buf [128]byte
	b := append(buf[:0], "n="...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, " sum="...)
	b = strconv.AppendInt(b, sum, 10)
	b = append(b, " min="...)
	b = strconv.AppendInt(b, lo, 10)
	b = append(b, " max="...)
	b = strconv.AppendInt(b, hi, 10)
	b = append(b, " first=s0="...)
	b = strconv.AppendInt(b, samples[0].value, 10)
	b = append(b, '\n')
	return append([]byte(nil), b...)
}
