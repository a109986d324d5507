package leaks

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
)

func init() {
	register(&Service{
		Name:    "subslice-retention",
		Kind:    KindHeap,
		Summary: "Memory climbs by about 256 KiB per ingested document although the service only remembers a 16-byte ID for each; a few thousand documents and it is hundreds of MB.",
		Hints: []string{
			"The heap profile blames the function that reads each document, yet the documents should be garbage as soon as the request ends.",
			"What the index keeps is a slice of the document: a slice header points into the original backing array, so the whole array stays reachable.",
			"Copy what you keep (bytes.Clone or strings.Clone) so the large buffer can be collected.",
		},
		Culprit:   pkgPath + ".(*idIndex).ingest",
		Profile:   "heap",
		Retainer:  "leaks.idIndex.recent",
		Rate:      10,
		Endpoints: []Endpoint{{Method: "POST", Path: "/ingest?doc={i}", Doc: "reads a 256 KiB document and indexes its 16-byte ID"}, {Method: "GET", Path: "/recent", Doc: "lists the most recently ingested IDs"}},
		Symptom:   Symptom{Metric: "go_gc_heap_live_bytes", Leaky: 16 << 20, Fixed: 2 << 20},
		Drive:     Drive{Warmup: 40, Requests: 120, Concurrency: 4},
		Explanation: "doc[:16] is a view into the 256 KiB document, not a copy. The index keeps the last 4096 IDs, and each ID " +
			"keeps its whole document alive: 1 GiB for an index that should take 64 KiB. The fixed variant keeps " +
			"bytes.Clone(doc[:16]), so the document is garbage when the request ends.",
		build: func(env *Env) (http.Handler, error) {
			ix := &idIndex{env: env}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /ingest", ix.serveIngest)
			mux.HandleFunc("GET /recent", ix.serveRecent)
			return mux, nil
		},
	})
}

const (
	documentSize   = 256 << 10
	documentIDLen  = 16
	recentIDsLimit = 4096
)

// idIndex remembers the IDs of the most recent documents.
type idIndex struct {
	env    *Env
	mu     sync.Mutex
	recent [][]byte
}

func (ix *idIndex) serveIngest(w http.ResponseWriter, r *http.Request) {
	id := ix.ingest(queryInt(r, "doc", 0))
	fmt.Fprintf(w, "indexed %s\n", id)
}

// ingest "downloads" a document and indexes its ID.
func (ix *idIndex) ingest(n int) []byte {
	doc := make([]byte, documentSize)
	fill(doc, n)
	copy(doc, fmt.Sprintf("doc-%012d", n))
	id := doc[:documentIDLen]
	if ix.env.Fixed {
		id = bytes.Clone(id)
	} else if !ix.env.Budget.Take(documentSize) {
		id = bytes.Clone(id) // at the leak cap
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.recent = append(ix.recent, id)
	if len(ix.recent) > recentIDsLimit {
		ix.recent = ix.recent[1:]
	}
	return id
}

func (ix *idIndex) serveRecent(w http.ResponseWriter, r *http.Request) {
	ix.mu.Lock()
	ids := make([]string, 0, min(len(ix.recent), 20))
	for i := len(ix.recent) - 1; i >= 0 && len(ids) < 20; i-- {
		ids = append(ids, string(ix.recent[i]))
	}
	ix.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"recent": ids})
}
