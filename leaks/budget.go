package leaks

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxLeak is how much a leaky service may retain on purpose before
// it stops leaking, so an exercise left running cannot take the machine down.
const DefaultMaxLeak = 256 << 20

// GoroutineCost is what a leaked goroutine is charged against the budget:
// its minimum stack plus the runtime's bookkeeping, rounded up.
const GoroutineCost = 8 << 10

// Budget caps a service's deliberate leak. Leaky code paths call Take before
// retaining something and fall back to the fixed behaviour when it says no;
// they call Release when something leaked is freed after all.
type Budget struct {
	limit    int64
	used     atomic.Int64
	capped   atomic.Bool
	onceLog  sync.Once
	log      *slog.Logger
	usedG    prometheus.Gauge
	cappedG  prometheus.Gauge
	refusedC prometheus.Counter
}

func newBudget(limit int64, log *slog.Logger, reg prometheus.Registerer) *Budget {
	b := &Budget{limit: limit, log: log}
	b.usedG = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "leaklab_leak_retained_bytes",
		Help: "Bytes the service has deliberately leaked (estimated), counted against --max-leak.",
	})
	limitG := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "leaklab_leak_limit_bytes",
		Help: "The --max-leak cap: past it the service stops leaking.",
	})
	limitG.Set(float64(limit))
	b.cappedG = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "leaklab_leak_capped",
		Help: "1 once the service reached --max-leak and stopped leaking, else 0.",
	})
	b.refusedC = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "leaklab_leak_refused_total",
		Help: "Leaks not made because the service had reached --max-leak.",
	})
	reg.MustRegister(b.usedG, limitG, b.cappedG, b.refusedC)
	return b
}

// Take reserves n bytes of leak. It returns false, and the caller must not
// leak, once the cap is reached.
func (b *Budget) Take(n int64) bool {
	for {
		cur := b.used.Load()
		if cur+n > b.limit {
			b.refusedC.Inc()
			if !b.capped.Swap(true) {
				b.cappedG.Set(1)
			}
			b.onceLog.Do(func() {
				b.log.Warn("leak cap reached: the service stops leaking now (raise it with --max-leak)",
					"retained_bytes", cur, "max_leak_bytes", b.limit)
			})
			return false
		}
		if b.used.CompareAndSwap(cur, cur+n) {
			b.usedG.Set(float64(cur + n))
			return true
		}
	}
}

// Release returns n bytes taken earlier.
func (b *Budget) Release(n int64) {
	b.usedG.Set(float64(b.used.Add(-n)))
}

// Used reports the bytes currently taken.
func (b *Budget) Used() int64 { return b.used.Load() }

// Capped reports whether the cap has been hit at least once.
func (b *Budget) Capped() bool { return b.capped.Load() }
