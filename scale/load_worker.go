package scale

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// loadWorker owns one connection and sends requests on it one at a time.
// Everything it counts is its own until the run ends, so the hot path
// takes no shared lock; only the progress counters are atomic.
type loadWorker struct {
	run  *loadRun
	plan *loadPlan

	latency  *hdrhistogram.Histogram
	highest  int64
	status   [1000]int64 // by status code (always three digits)
	classes  [numErrorClasses]int64
	examples [numErrorClasses]string
	late     int64
	sent     int64
	connects int64
	// finished and failed are read by the progress reporter while the
	// run goes on.
	finished atomic.Int64
	failed   atomic.Int64

	wbuf  []byte
	timer *time.Timer

	// mu guards conn against abort, which an interrupt calls from another
	// goroutine.
	mu   sync.Mutex
	conn *httpConn
}

func newLoadWorker(run *loadRun, plan *loadPlan) *loadWorker {
	h := newLatencyHistogram(plan.highestLatency, plan.connections)
	return &loadWorker{run: run, plan: plan, latency: h, highest: h.HighestTrackableValue()}
}

// loop takes request tickets until a bound is reached or the run is
// interrupted.
func (w *loadWorker) loop(ctx context.Context) {
	defer w.dropConn()
	r, p := w.run, w.plan
	// ctx.Err() as well as stopped: interrupt runs in a goroutine of its
	// own once ctx is done, and until it has, a worker would take requests
	// that fail at once on the cancelled ctx (CI counted 1,441 such
	// "errors" in one interrupted run).
	for !r.stopped.Load() && ctx.Err() == nil {
		seq := r.tickets.Add(1) - 1
		if p.requests > 0 && seq >= p.requests {
			return
		}
		now := time.Now()
		from := now // what latency is measured from
		if p.rate > 0 {
			sched := r.scheduledAt(seq)
			if !r.end.IsZero() && !sched.Before(r.end) {
				return
			}
			late := false
			if now.Before(sched) {
				if !w.sleepUntil(ctx, sched) {
					return
				}
				now = time.Now()
				// the timer itself woke late (a starved CPU): not sent on time either
				late = now.Sub(sched) > LateAfter
			} else if late = now.Sub(sched) > LateAfter; late && !r.end.IsZero() && !now.Before(r.end) {
				// Due before the end but every connection was busy until
				// after it: unsent. One picked up on time is sent even if
				// the timer woke a little after the end.
				return
			}
			if late {
				w.late++
			}
			from = sched
		} else if !r.end.IsZero() && !now.Before(r.end) {
			return
		}
		w.sent++
		status, err := w.roundTrip(ctx, seq, now)
		if r.stopped.Load() || ctx.Err() != nil {
			// Cut short by the interrupt: not a measurement.
			return
		}
		w.record(from, status, err)
	}
}

func (w *loadWorker) sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.timer.C:
		return true
	case <-ctx.Done():
		w.timer.Stop()
		return false
	}
}

func (w *loadWorker) record(from time.Time, status int, err error) {
	w.recordLatency(int64(time.Since(from)), status, err)
}

// recordLatency counts a finished request: a response's status and
// latency (nanoseconds), or a transport error.
func (w *loadWorker) recordLatency(lat int64, status int, err error) {
	if err != nil {
		c := classify(err)
		w.classes[c]++
		if w.examples[c] == "" {
			w.examples[c] = err.Error()
		}
		w.failed.Add(1)
		w.finished.Add(1)
		return
	}
	w.latency.RecordValue(min(max(lat, 1), w.highest)) //nolint:errcheck // clamped into range
	w.status[status]++
	if status < 200 || status > 299 {
		w.classes[ErrNon2xx]++
		if w.examples[ErrNon2xx] == "" {
			w.examples[ErrNon2xx] = "HTTP " + strconv.Itoa(status)
		}
		w.failed.Add(1)
	}
	w.finished.Add(1)
}

// roundTrip sends request seq and reads the whole response. A request
// that fails on a reused connection before any response byte arrives is
// retried once on a new one: the server closed an idle keep-alive
// connection, which is not the server failing the request.
func (w *loadWorker) roundTrip(ctx context.Context, seq int64, now time.Time) (int, error) {
	p := w.plan
	deadline := now.Add(p.timeout)
	msg := p.request
	if p.requestParts != nil {
		w.wbuf = p.appendRequest(w.wbuf[:0], seq)
		msg = w.wbuf
	}
	for attempt := 0; ; attempt++ {
		c := w.conn
		if c == nil {
			var err error
			if c, err = w.dial(ctx, deadline); err != nil {
				return 0, err
			}
		} else if err := w.armDeadline(c, deadline); err != nil {
			return 0, err
		}
		status, keep, gotBytes, err := c.exchange(msg, p.head)
		if err == nil {
			c.used = true
			if !keep || !p.keepAlive {
				w.dropConn()
			}
			return status, nil
		}
		reused := c.used
		w.dropConn()
		if attempt == 0 && reused && !gotBytes && isStaleConn(err) && time.Now().Before(deadline) {
			continue
		}
		return 0, err
	}
}

// armDeadline sets the request's deadline unless the run was interrupted;
// under mu so that it cannot undo abort's expired deadline.
func (w *loadWorker) armDeadline(c *httpConn, deadline time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.run.stopped.Load() {
		return errStopped
	}
	return c.nc.SetDeadline(deadline)
}

func (w *loadWorker) dial(ctx context.Context, deadline time.Time) (*httpConn, error) {
	if w.run.stopped.Load() {
		return nil, errStopped
	}
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "tcp", w.plan.dialAddr)
	if err != nil {
		return nil, err
	}
	w.connects++
	if tc, ok := nc.(*net.TCPConn); ok {
		// Close with a RST instead of leaving TIME_WAIT sockets behind
		// when keep-alive is off and connections churn.
		if !w.plan.keepAlive {
			_ = tc.SetLinger(0)
		}
	}
	if w.plan.tls != nil {
		tc := tls.Client(nc, w.plan.tls)
		_ = tc.SetDeadline(deadline)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	c := newHTTPConn(nc)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.run.stopped.Load() {
		nc.Close()
		return nil, errStopped
	}
	if err := nc.SetDeadline(deadline); err != nil {
		nc.Close()
		return nil, err
	}
	w.conn = c
	return c, nil
}

func (w *loadWorker) dropConn() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		w.conn.nc.Close()
		w.conn = nil
	}
}

// abort makes the request in flight fail now.
func (w *loadWorker) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		_ = w.conn.nc.SetDeadline(time.Unix(1, 0))
	}
}
