package leaks

import (
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register(&Service{
		Name:    "wallet-callbacks",
		Kind:    KindGoroutine,
		Summary: "While the bank's callback endpoint is down, every payment adds a goroutine and memory climbs; when the bank comes back the service is hit by a burst of thousands of retries at once.",
		Hints: []string{
			"The goroutine profile shows one growing group sleeping in the callback retry loop; the heap profile shows the transactions they hold.",
			"Each failed callback gets its own goroutine that retries forever, with no attempt limit and no shared queue, and each holds its whole transaction.",
			"Put failed callbacks on a bounded queue served by a fixed pool of workers, with backoff, a maximum number of attempts, and a dead-letter record (the ID, not the transaction) for the rest.",
		},
		Culprit: pkgPath + ".(*wallet).retryCallback",
		Profile: "goroutine",
		Endpoints: []Endpoint{
			{Method: "POST", Path: "/pay?account=acct-{i}&cents=1999", Doc: "debits an account and notifies the bank (whose callback endpoint is down)"},
			{Method: "GET", Path: "/callbacks", Doc: "shows pending and dead-lettered bank callbacks"},
		},
		Symptom: Symptom{Metric: "go_sched_goroutines_goroutines", Leaky: 300, Fixed: 20},
		Explanation: "A per-failure goroutine with an unbounded retry loop is a queue with no bound and no visibility: " +
			"every failure adds a goroutine, a timer and the transaction it closes over. The fixed variant hands " +
			"failures to a bounded queue (32 entries) drained by two workers, which back off, give up after five attempts and " +
			"keep only the transaction's ID in a bounded dead-letter list.",
		build: func(env *Env) (http.Handler, error) {
			w := &wallet{env: env, bank: &bankAPI{down: true}, retryEvery: 200 * time.Millisecond}
			w.pending = prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "leaklab_wallet_pending_callbacks",
				Help: "Bank callbacks waiting to be retried.",
			})
			env.Metrics.MustRegister(w.pending)
			if env.Fixed {
				w.queue = make(chan *transaction, callbackQueueSize)
				for range callbackWorkers {
					go w.callbackWorker()
				}
			}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /pay", w.servePay)
			mux.HandleFunc("GET /callbacks", w.serveCallbacks)
			return mux, nil
		},
	})
}

const (
	transactionAuditBytes = 32 << 10 // ledger lines, signatures, the bank's request
	callbackQueueSize     = 32
	callbackWorkers       = 2
	callbackAttempts      = 5
	deadLetterLimit       = 1024
)

var errBankDown = errors.New("bank callback endpoint unavailable")

type bankAPI struct {
	down          bool
	calls         atomic.Int64
	lastSignature atomic.Uint32
}

// notify sends the bank the transaction and its signed audit record.
func (b *bankAPI) notify(tx *transaction) error {
	b.calls.Add(1)
	b.lastSignature.Store(crc32.ChecksumIEEE(tx.audit))
	if b.down {
		return errBankDown
	}
	return nil
}

type transaction struct {
	id      int64
	account string
	cents   int
	audit   []byte
}

type wallet struct {
	env        *Env
	bank       *bankAPI
	retryEvery time.Duration
	pending    prometheus.Gauge
	queue      chan *transaction
	nextID     atomic.Int64

	mu         sync.Mutex
	deadLetter []int64
}

func (w *wallet) servePay(rw http.ResponseWriter, r *http.Request) {
	tx := &transaction{id: w.nextID.Add(1), account: r.URL.Query().Get("account"), cents: queryInt(r, "cents", 0), audit: make([]byte, transactionAuditBytes)}
	fill(tx.audit, int(tx.id))
	if err := w.bank.notify(tx); err != nil {
		w.scheduleRetry(tx)
	}
	writeJSON(rw, http.StatusOK, map[string]any{"transaction": tx.id, "status": "debited"})
}

func (w *wallet) scheduleRetry(tx *transaction) {
	if w.env.Fixed {
		select {
		case w.queue <- tx:
			w.pending.Inc()
		default:
			w.deadLetterTx(tx.id) // queue full: shed load rather than pile up
		}
		return
	}
	if !w.env.Budget.Take(GoroutineCost + transactionAuditBytes) {
		w.deadLetterTx(tx.id)
		return
	}
	w.pending.Inc()
	go w.retryCallback(tx)
}

// retryCallback keeps notifying the bank until it answers.
func (w *wallet) retryCallback(tx *transaction) {
	for {
		time.Sleep(w.retryEvery)
		if w.bank.notify(tx) == nil {
			w.pending.Dec()
			w.env.Budget.Release(GoroutineCost + transactionAuditBytes)
			return
		}
	}
}

// callbackWorker drains the bounded retry queue of the fixed variant.
func (w *wallet) callbackWorker() {
	ctx := w.env.Context()
	for {
		var tx *transaction
		select {
		case <-ctx.Done():
			return
		case tx = <-w.queue:
		}
		delivered := false
		for attempt := 1; attempt <= callbackAttempts && !delivered; attempt++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(w.retryEvery << (attempt - 1) / 8):
			}
			delivered = w.bank.notify(tx) == nil
		}
		w.pending.Dec()
		if !delivered {
			w.deadLetterTx(tx.id)
		}
	}
}

func (w *wallet) deadLetterTx(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadLetter = append(w.deadLetter, id)
	if len(w.deadLetter) > deadLetterLimit {
		w.deadLetter = w.deadLetter[len(w.deadLetter)-deadLetterLimit:]
	}
}

func (w *wallet) serveCallbacks(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	dead := len(w.deadLetter)
	w.mu.Unlock()
	fmt.Fprintf(rw, "bank calls: %d, dead-lettered: %d\n", w.bank.calls.Load(), dead)
}
