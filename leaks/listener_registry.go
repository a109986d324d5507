package leaks

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

func init() {
	register(&Service{
		Name:    "listener-leak",
		Kind:    KindHeap,
		Summary: "Memory grows with every quote served and each price tick takes longer: after a day the ticker that used to take microseconds takes seconds.",
		Hints: []string{
			"The heap profile shows the quote handler's allocations surviving long after the requests finished. Something still references them.",
			"Each request subscribes a listener to the price feed. Find the matching unsubscribe.",
			"Subscribe should hand back an unsubscribe function; defer it in the handler (or tie the subscription to the request's context).",
		},
		Culprit:   pkgPath + ".(*quoteService).quote",
		Profile:   "heap",
		Retainer:  "leaks.priceFeed.listeners",
		Endpoints: []Endpoint{{Method: "GET", Path: "/quote?symbol=LEAK&client={i}", Doc: "quotes a symbol, watching the price feed while it does"}},
		Symptom:   Symptom{Metric: "go_gc_heap_live_bytes", Leaky: 4 << 20, Fixed: 1 << 20},
		Explanation: "The observer pattern's classic leak: the feed holds a reference to every listener ever subscribed, " +
			"so every listener (and the 16 KiB it carries) lives as long as the feed, and every tick walks all of them. " +
			"The fixed variant unsubscribes when the request ends.",
		build: func(env *Env) (http.Handler, error) {
			feed := &priceFeed{listeners: map[int]*quoteListener{}}
			q := &quoteService{env: env, feed: feed}
			go feed.run(env.Context(), 100*time.Millisecond)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /quote", q.quote)
			return mux, nil
		},
	})
}

const listenerScratch = 16 << 10

type quoteListener struct {
	symbol  string
	scratch []byte  // per-listener formatting buffer
	last    float64 // guarded by the feed's mu: ticks write it
}

func (l *quoteListener) onTick(price float64) {
	l.last = price
	l.scratch[0] = byte(price)
}

// priceFeed fans price ticks out to listeners.
type priceFeed struct {
	mu        sync.Mutex
	nextID    int
	listeners map[int]*quoteListener
	price     float64
}

// subscribe adds l and returns the function that removes it.
func (f *priceFeed) subscribe(l *quoteListener) (unsubscribe func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	id := f.nextID
	f.listeners[id] = l
	l.last = f.price
	return func() {
		f.mu.Lock()
		delete(f.listeners, id)
		f.mu.Unlock()
	}
}

// lastPrice returns the latest price l has seen, read under f.mu since the
// feed's ticks write it.
func (f *priceFeed) lastPrice(l *quoteListener) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return l.last
}

func (f *priceFeed) run(ctx interface{ Done() <-chan struct{} }, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.mu.Lock()
			f.price += 0.01
			for _, l := range f.listeners {
				l.onTick(f.price)
			}
			f.mu.Unlock()
		}
	}
}

type quoteService struct {
	env  *Env
	feed *priceFeed
}

// quote watches the feed for the duration of the request.
func (q *quoteService) quote(w http.ResponseWriter, r *http.Request) {
	l := &quoteListener{symbol: r.URL.Query().Get("symbol"), scratch: make([]byte, listenerScratch)}
	unsubscribe := q.feed.subscribe(l)
	if q.env.Fixed || !q.env.Budget.Take(listenerScratch) {
		defer unsubscribe()
	}
	fmt.Fprintf(w, "%s %.2f\n", l.symbol, 100+q.feed.lastPrice(l))
}
