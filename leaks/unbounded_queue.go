package leaks

import (
	"net/http"
	"sync"
	"time"
)

func init() {
	register(&Service{
		Name:    "unbounded-queue",
		Kind:    KindHeap,
		Summary: "Under a traffic spike memory climbs without limit and jobs finish hours after they were accepted; the service answers 202 Accepted to everything until it is OOM-killed.",
		Hints: []string{
			"The heap profile points at job submission: accepted jobs pile up faster than they are processed.",
			"The queue is a slice that grows on every submit while a single worker takes a job every 50 ms (20 a second, against 100 submitted under the steady load). Nothing pushes back on the producers.",
			"Bound the queue (a buffered channel) and refuse work when it is full with 503 and Retry-After: back-pressure keeps memory and latency bounded.",
		},
		Culprit:  pkgPath + ".(*jobQueue).enqueue",
		Profile:  "heap",
		Retainer: "leaks.jobQueue.backlog",
		Rate:     100,
		Endpoints: []Endpoint{
			{Method: "POST", Path: "/jobs?id={i}", Doc: "accepts a job for background processing"},
			{Method: "GET", Path: "/jobs", Doc: "shows queue depth"},
		},
		// The fixed queue holds up to 64 jobs of 16 KiB: 1 MiB by design.
		Symptom: Symptom{Metric: "go_gc_heap_live_bytes", Leaky: 4 << 20, Fixed: 2 << 20},
		Explanation: "A producer that outpaces its consumer needs a bound somewhere. The slice-backed queue accepts " +
			"everything, so memory (and the wait of the last job) grows with the backlog. The fixed variant's queue " +
			"holds 64 jobs; when it is full the handler answers 503 with Retry-After and the client backs off.",
		build: func(env *Env) (http.Handler, error) {
			q := &jobQueue{env: env, every: 50 * time.Millisecond, bounded: make(chan *job, jobQueueBound)}
			q.cond = sync.NewCond(&q.mu)
			go q.work()
			env.OnClose(func() {
				q.mu.Lock()
				q.stopped = true
				q.cond.Broadcast()
				q.mu.Unlock()
			})
			mux := http.NewServeMux()
			mux.HandleFunc("POST /jobs", q.serveSubmit)
			mux.HandleFunc("GET /jobs", q.serveDepth)
			return mux, nil
		},
	})
}

const (
	jobPayloadBytes = 16 << 10
	jobQueueBound   = 64
)

type job struct {
	id      int
	payload []byte
}

type jobQueue struct {
	env   *Env
	every time.Duration

	mu      sync.Mutex
	cond    *sync.Cond
	backlog []*job // leaky: unbounded
	stopped bool

	bounded chan *job // fixed
}

// enqueue accepts a job, or reports false when the queue is full.
func (q *jobQueue) enqueue(id int) bool {
	j := &job{id: id, payload: make([]byte, jobPayloadBytes)}
	fill(j.payload, id)
	if q.env.Fixed {
		select {
		case q.bounded <- j:
			return true
		default:
			return false
		}
	}
	if !q.env.Budget.Take(jobPayloadBytes) {
		return false
	}
	q.mu.Lock()
	q.backlog = append(q.backlog, j)
	q.cond.Signal()
	q.mu.Unlock()
	return true
}

func (q *jobQueue) next() *job {
	if q.env.Fixed {
		select {
		case j := <-q.bounded:
			return j
		case <-q.env.Context().Done():
			return nil
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.backlog) == 0 && !q.stopped {
		q.cond.Wait()
	}
	if q.stopped {
		return nil
	}
	j := q.backlog[0]
	q.backlog[0] = nil
	q.backlog = q.backlog[1:]
	q.env.Budget.Release(jobPayloadBytes)
	return j
}

// work is the single consumer: one job every q.every.
func (q *jobQueue) work() {
	for {
		j := q.next()
		if j == nil {
			return
		}
		time.Sleep(q.every)
	}
}

func (q *jobQueue) serveSubmit(w http.ResponseWriter, r *http.Request) {
	id := queryInt(r, "id", 0)
	if !q.enqueue(id) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "queue full, retry later", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"job": id, "queued": true})
}

func (q *jobQueue) serveDepth(w http.ResponseWriter, r *http.Request) {
	q.mu.Lock()
	depth := len(q.backlog) + len(q.bounded)
	q.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"depth": depth})
}
