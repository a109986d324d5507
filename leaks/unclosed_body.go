package leaks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

func init() {
	register(&Service{
		Name:    "unclosed-body",
		Kind:    KindGoroutine,
		Summary: "Goroutines grow by three for every stock lookup, open connections to the inventory backend climb into the thousands, and eventually the process runs out of file descriptors.",
		Hints: []string{
			"The growing goroutines are net/http's own: (*persistConn).readLoop and writeLoop, one pair per connection to the backend.",
			"Those goroutines hold their requests: the heap profile (inuse_space) shows which function built them. A client connection goes back to the pool only when its response body is read to the end and closed.",
			"defer resp.Body.Close() right after the error check, and read the body you asked for (or drain it) so the connection can be reused.",
		},
		Culprit:   pkgPath + ".(*stockService).fetchStock",
		Profile:   "heap",
		Endpoints: []Endpoint{{Method: "GET", Path: "/stock?sku=sku-{i}", Doc: "asks the inventory backend for a SKU's stock level"}},
		Symptom:   Symptom{Metric: "go_sched_goroutines_goroutines", Leaky: 300, Fixed: 40},
		Explanation: "The handler only needs the X-Stock header, so it never reads or closes the body. An open body pins " +
			"its connection: the transport cannot reuse it and opens a new one for the next request, and each " +
			"pinned connection costs a read goroutine, a write goroutine, buffers and a file descriptor (plus the " +
			"backend's side of it). The fixed variant closes the body, so a few pooled connections serve everything. " +
			"The goroutine profile shows net/http frames only; the heap profile shows whose requests those " +
			"connections keep alive (each pinned connection holds its request and the query body).",
		build: func(env *Env) (http.Handler, error) {
			backend, err := startInventoryBackend(env)
			if err != nil {
				return nil, err
			}
			s := &stockService{
				env:     env,
				backend: backend,
				// No overall client timeout, as with http.DefaultClient: one would
				// close a pinned connection after a while and hide the bug.
				client: &http.Client{
					Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: 5 * time.Second},
				},
			}
			env.OnClose(s.client.CloseIdleConnections)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /stock", s.serveStock)
			return mux, nil
		},
	})
}

// inventoryQueryBytes is the size of the query sent: the SKU and every
// warehouse to check.
const inventoryQueryBytes = 16 << 10

// inventoryRecordBytes is the size of the backend's answer: more than a
// client reads by accident, so an unread body pins its connection.
const inventoryRecordBytes = 64 << 10

// startInventoryBackend runs the service's dependency on a loopback port.
func startInventoryBackend(env *Env) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("starting the inventory backend: %w", err)
	}
	history := strings.Repeat("restock;", inventoryRecordBytes/8)
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Stock", "42")
			w.Header().Set("Content-Type", "application/json")
			io.Copy(io.Discard, r.Body)
			_ = json.NewEncoder(w).Encode(map[string]any{"sku": r.URL.Query().Get("sku"), "stock": 42, "history": history})
		}),
	}
	go srv.Serve(ln)
	env.OnClose(func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

type stockService struct {
	env     *Env
	backend string
	client  *http.Client
}

func (s *stockService) serveStock(w http.ResponseWriter, r *http.Request) {
	stock, err := s.fetchStock(r.URL.Query().Get("sku"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	fmt.Fprintf(w, "stock %s\n", stock)
}

// fetchStock asks the inventory backend for a SKU's stock level.
func (s *stockService) fetchStock(sku string) (string, error) {
	query := make([]byte, 0, inventoryQueryBytes)
	query = fmt.Appendf(query, `{"sku":%q,"warehouses":[`, sku)
	for i := 0; len(query) < inventoryQueryBytes-32; i++ {
		query = fmt.Appendf(query, `"wh-%04d",`, i)
	}
	query = append(query, `"wh-main"]}`...)
	resp, err := s.client.Post(s.backend+"/inventory/query", "application/json", bytes.NewReader(query))
	if err != nil {
		return "", fmt.Errorf("inventory backend: %w", err)
	}
	if s.env.Fixed || !s.env.Budget.Take(3*GoroutineCost+inventoryRecordBytes+inventoryQueryBytes) {
		defer resp.Body.Close()
		defer io.Copy(io.Discard, io.LimitReader(resp.Body, 2*inventoryRecordBytes))
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("inventory backend: %s", resp.Status)
	}
	return resp.Header.Get("X-Stock"), nil
}
