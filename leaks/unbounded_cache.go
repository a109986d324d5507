package leaks

import (
	"container/list"
	"fmt"
	"html"
	"net/http"
	"sync"
)

func init() {
	register(&Service{
		Name:    "unbounded-cache",
		Kind:    KindHeap,
		Summary: "Live heap grows by about 32 KiB for every product page viewed for the first time and never comes back down; RSS climbs for as long as new products are browsed.",
		Hints: []string{
			"Take two heap profiles (inuse_space) a minute apart under load and diff them: the growth is in one function.",
			"That function keeps every rendered page in a map keyed by the product ID from the query string. Who ever deletes from it?",
			"A cache needs a bound: keep the N most recently used pages (container/list plus a map is enough) and evict the rest.",
		},
		Culprit:   pkgPath + ".(*pageCache).render",
		Profile:   "heap",
		Retainer:  "leaks.pageCache.entries",
		Endpoints: []Endpoint{{Method: "GET", Path: "/product?id={i}", Doc: "renders a product page, cached by product ID"}},
		Symptom:   Symptom{Metric: "go_gc_heap_live_bytes", Leaky: 8 << 20, Fixed: 2 << 20},
		Explanation: "The leaky variant memoises rendered pages in a plain map keyed by request data. Every distinct ID adds an entry " +
			"and nothing removes one, so the cache is a leak with a hit rate. The fixed variant is an LRU with room for " +
			"128 pages: memory is bounded by design and the hot pages still hit.",
		build: func(env *Env) (http.Handler, error) {
			c := &pageCache{env: env, entries: map[string]*list.Element{}, order: list.New(), capacity: pageCacheCapacity}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /product", c.serve)
			return mux, nil
		},
	})
}

const (
	pageSize          = 32 << 10
	pageCacheCapacity = 128
)

type cachedPage struct {
	id   string
	body []byte
}

// pageCache renders product pages and remembers them.
type pageCache struct {
	env      *Env
	mu       sync.Mutex
	entries  map[string]*list.Element
	order    *list.List // front is most recently used; only the fixed variant evicts
	capacity int
}

func (c *pageCache) serve(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		http.Error(w, "missing ?id=", http.StatusBadRequest)
		return
	}
	page := c.lookup(id)
	if page == nil {
		page = c.render(id)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<h1>product %s</h1><p>%d bytes of product page</p>\n", html.EscapeString(id), len(page))
}

func (c *pageCache) lookup(id string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[id]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*cachedPage).body
	}
	return nil
}

// render builds the page and caches it.
func (c *pageCache) render(id string) []byte {
	body := make([]byte, pageSize)
	fill(body, len(id)*31+int(id[0]))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[id]; ok {
		return body
	}
	if !c.env.Fixed && !c.env.Budget.Take(pageSize) {
		return body // at the leak cap: serve uncached
	}
	c.entries[id] = c.order.PushFront(&cachedPage{id: id, body: body})
	if c.env.Fixed {
		for c.order.Len() > c.capacity {
			oldest := c.order.Back()
			c.order.Remove(oldest)
			delete(c.entries, oldest.Value.(*cachedPage).id)
		}
	}
	return body
}
