package leaks

import (
	"fmt"
	"net/http"
)

func init() {
	register(&Service{
		Name:    "unclosed-channel",
		Kind:    KindGoroutine,
		Summary: "Every batch request leaves one goroutine behind; the goroutine count equals the number of batches ever served.",
		Hints: []string{
			"In the goroutine profile one group keeps growing, parked in 'chan receive' inside a for-range loop.",
			"A for-range over a channel ends only when the channel is closed. Does the producer close it?",
			"The sender owns the channel: close it (defer close(jobs)) once the last job is sent.",
		},
		Culprit:   pkgPath + ".(*batchService).consume",
		Profile:   "goroutine",
		Endpoints: []Endpoint{{Method: "POST", Path: "/batch?size=8&id={i}", Doc: "sums a batch of jobs in a consumer goroutine"}},
		Symptom:   Symptom{Metric: "go_sched_goroutines_goroutines", Leaky: 300, Fixed: 20},
		Explanation: "The consumer ranges over the jobs channel and answers each job; the handler sends the batch, reads the " +
			"answers and returns without closing the channel. The consumer waits for a next job forever. The fixed " +
			"variant closes the channel when the batch is sent, which ends the range loop.",
		build: func(env *Env) (http.Handler, error) {
			s := &batchService{env: env}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /batch", s.serveBatch)
			return mux, nil
		},
	})
}

type batchService struct{ env *Env }

func (s *batchService) serveBatch(w http.ResponseWriter, r *http.Request) {
	size := min(max(queryInt(r, "size", 8), 1), 1000)
	jobs := make(chan int)
	answers := make(chan int)
	go s.consume(jobs, answers)
	if s.env.Fixed || !s.env.Budget.Take(GoroutineCost) {
		defer close(jobs)
	}
	sum := 0
	for i := range size {
		jobs <- i
		sum += <-answers
	}
	fmt.Fprintf(w, "batch of %d: sum of squares %d\n", size, sum)
}

// consume answers every job sent on jobs until jobs is closed.
func (s *batchService) consume(jobs <-chan int, answers chan<- int) {
	for j := range jobs {
		answers <- j * j
	}
}
