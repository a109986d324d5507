package leaks

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register(&Service{
		Name:    "upload-buffer",
		Kind:    KindHeap,
		Summary: "Every upload raises memory by the size of the file, and a handful of concurrent large uploads take the service down with an out-of-memory kill.",
		Hints: []string{
			"Diff two heap profiles: the growth is under io.ReadAll, called from the upload handler.",
			"The handler reads the whole request body into memory and keeps it there as the stored file.",
			"Stream the body to disk with io.Copy and a fixed-size buffer; memory per upload is then the buffer, whatever the file size, and progress can be reported as bytes arrive.",
		},
		Culprit:  pkgPath + ".(*uploadStore).receive",
		Profile:  "heap",
		Retainer: "leaks.uploadStore.inMemory",
		Rate:     4,
		Endpoints: []Endpoint{
			{Method: "POST", Path: "/upload?name=file-{i}", BodyBytes: 1 << 20, Doc: "stores the request body as a file"},
			{Method: "GET", Path: "/uploads", Doc: "lists stored uploads and uploads in progress (bytes received of expected)"},
		},
		Symptom: Symptom{Metric: "go_gc_heap_live_bytes", Leaky: 16 << 20, Fixed: 2 << 20},
		Drive:   Drive{Warmup: 10, Requests: 40, Concurrency: 4},
		Explanation: "io.ReadAll buffers the whole body (and grows its buffer by doubling on the way), and the leaky store keeps " +
			"those bytes as the file. The fixed variant streams the body to a temporary directory with a 32 KiB buffer, " +
			"tracks progress per upload, and keeps at most 64 files on disk.",
		build: func(env *Env) (http.Handler, error) {
			s := &uploadStore{env: env, inMemory: map[string][]byte{}, progress: map[string]*uploadProgress{}}
			s.received = prometheus.NewCounter(prometheus.CounterOpts{
				Name: "leaklab_upload_received_bytes_total",
				Help: "Upload bytes received so far, counted as they arrive.",
			})
			env.Metrics.MustRegister(s.received)
			if env.Fixed {
				dir, err := os.MkdirTemp("", "leaklab-uploads-")
				if err != nil {
					return nil, fmt.Errorf("creating the upload directory: %w", err)
				}
				s.dir = dir
				env.OnClose(func() { os.RemoveAll(dir) })
			}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /upload", s.serveUpload)
			mux.HandleFunc("GET /uploads", s.serveList)
			return mux, nil
		},
	})
}

const (
	uploadCopyBuffer  = 32 << 10
	uploadsKeptOnDisk = 64
)

type uploadProgress struct {
	expected int64
	received atomic.Int64
}

// uploadStore keeps uploaded files: in memory (leaky) or on disk (fixed).
type uploadStore struct {
	env      *Env
	dir      string
	received prometheus.Counter

	mu       sync.Mutex
	inMemory map[string][]byte
	onDisk   []string // oldest first
	progress map[string]*uploadProgress
}

func (s *uploadStore) serveUpload(w http.ResponseWriter, r *http.Request) {
	name := filepath.Base(r.URL.Query().Get("name"))
	if name == "." || name == "/" || name == "" {
		http.Error(w, "missing ?name=", http.StatusBadRequest)
		return
	}
	n, err := s.receive(name, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"name": name, "bytes": n})
}

// receive stores the request body under name.
func (s *uploadStore) receive(name string, r *http.Request) (int64, error) {
	if !s.env.Fixed {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return 0, fmt.Errorf("reading the upload: %w", err)
		}
		s.received.Add(float64(len(data)))
		if s.env.Budget.Take(int64(cap(data))) {
			s.mu.Lock()
			s.inMemory[name] = data
			s.mu.Unlock()
		}
		return int64(len(data)), nil
	}

	p := &uploadProgress{expected: r.ContentLength}
	s.mu.Lock()
	s.progress[name] = p
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.progress, name)
		s.mu.Unlock()
	}()

	tmp, err := os.CreateTemp(s.dir, ".partial-*")
	if err != nil {
		return 0, fmt.Errorf("storing the upload: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	n, err := io.CopyBuffer(tmp, &countingReader{r: r.Body, progress: p, counter: s.received}, make([]byte, uploadCopyBuffer))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("reading the upload: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, name)); err != nil {
		return n, fmt.Errorf("storing the upload: %w", err)
	}
	s.mu.Lock()
	s.onDisk = append(s.onDisk, name)
	for len(s.onDisk) > uploadsKeptOnDisk {
		os.Remove(filepath.Join(s.dir, s.onDisk[0]))
		s.onDisk = s.onDisk[1:]
	}
	s.mu.Unlock()
	return n, nil
}

// countingReader reports upload progress as bytes arrive.
type countingReader struct {
	r        io.Reader
	progress *uploadProgress
	counter  prometheus.Counter
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.progress.received.Add(int64(n))
	c.counter.Add(float64(n))
	return n, err
}

func (s *uploadStore) serveList(w http.ResponseWriter, r *http.Request) {
	type inFlight struct {
		Name     string `json:"name"`
		Received int64  `json:"received_bytes"`
		Expected int64  `json:"expected_bytes"`
	}
	s.mu.Lock()
	stored := make([]string, 0, len(s.inMemory)+len(s.onDisk))
	for n := range s.inMemory {
		stored = append(stored, n)
	}
	stored = append(stored, s.onDisk...)
	progress := make([]inFlight, 0, len(s.progress))
	for n, p := range s.progress {
		progress = append(progress, inFlight{Name: n, Received: p.received.Load(), Expected: p.expected})
	}
	s.mu.Unlock()
	sort.Strings(stored)
	writeJSON(w, http.StatusOK, map[string]any{"stored": len(stored), "in_progress": progress, "storage": storageName(s.dir)})
}

func storageName(dir string) string {
	if dir == "" {
		return "memory"
	}
	return "disk:" + strconv.Quote(dir)
}
