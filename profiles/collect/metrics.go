package collect

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the collector's own, served on its /metrics so that the
// collector is watched like any other service (and a Prometheus scraping
// it sees when targets fail or fall behind).
type metrics struct {
	captures      *prometheus.CounterVec   // target, type
	failures      *prometheus.CounterVec   // target, type, reason
	bytes         *prometheus.CounterVec   // target, type
	lag           *prometheus.GaugeVec     // target
	up            *prometheus.GaugeVec     // target
	skipped       *prometheus.CounterVec   // target
	lastSuccess   *prometheus.GaugeVec     // target
	captureTime   prometheus.Histogram     // all targets
	targets       prometheus.Gauge         // discovered targets
	discoveryErrs prometheus.Counter       // failed discovery refreshes
	discarded     prometheus.Counter       // in-flight captures dropped at shutdown
	pushes        *prometheus.CounterVec   // service, type
	pushBytes     *prometheus.CounterVec   // service, type
	pushRejected  *prometheus.CounterVec   // reason
	forwarded     *prometheus.CounterVec   // result: ok, failed, dropped
	storeBytes    prometheus.Gauge         // collected bytes held in the store
	storeProfiles prometheus.Gauge         // collected profiles held in the store
	pruned        *prometheus.CounterVec   // why: age, size
	saveErrors    prometheus.Counter       // store writes that failed
	ingestTime    *prometheus.HistogramVec // status
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		captures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_collect_captures_total", Help: "Profiles captured from pull targets.",
		}, []string{"target", "type"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_collect_failures_total", Help: "Failed profile captures from pull targets, by reason.",
		}, []string{"target", "type", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_collect_bytes_total", Help: "Gzipped profile bytes captured from pull targets.",
		}, []string{"target", "type"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leaklab_collect_lag_seconds", Help: "How late the target's last capture started compared with its schedule.",
		}, []string{"target"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leaklab_collect_target_up", Help: "1 when the target's last capture round succeeded, 0 when it is failing (and backed off).",
		}, []string{"target"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_collect_skipped_rounds_total", Help: "Capture rounds skipped because the previous one overran the interval.",
		}, []string{"target"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leaklab_collect_last_success_timestamp_seconds", Help: "When the target's last successful capture ended (Unix time).",
		}, []string{"target"}),
		captureTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "leaklab_collect_capture_duration_seconds", Help: "Time to fetch and store one profile.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leaklab_collect_targets", Help: "Pull targets currently discovered.",
		}),
		discoveryErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leaklab_collect_discovery_failures_total", Help: "Target discovery refreshes that failed (the previous targets were kept).",
		}),
		discarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leaklab_collect_discarded_total", Help: "In-flight captures discarded at shutdown because they did not finish within the grace period.",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_collect_pushes_total", Help: "Profiles accepted on the push (Pyroscope ingest) API.",
		}, []string{"service", "type"}),
		pushBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_collect_push_bytes_total", Help: "Profile bytes accepted on the push API, as received.",
		}, []string{"service", "type"}),
		pushRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_collect_push_rejected_total", Help: "Pushes rejected, by reason.",
		}, []string{"reason"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_collect_forwarded_total", Help: "Profiles forwarded to Pyroscope, by result (ok, failed, dropped).",
		}, []string{"result"}),
		storeBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leaklab_collect_store_bytes", Help: "Bytes of collected profiles held in the local store.",
		}),
		storeProfiles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leaklab_collect_store_profiles", Help: "Collected profiles held in the local store.",
		}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leaklab_collect_pruned_total", Help: "Collected profiles removed by retention, by rule (age, size).",
		}, []string{"rule"}),
		saveErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leaklab_collect_store_errors_total", Help: "Profiles that could not be written to the store.",
		}),
		ingestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "leaklab_collect_push_duration_seconds", Help: "Time to handle one push, by HTTP status.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"code"}),
	}
	reg.MustRegister(m.captures, m.failures, m.bytes, m.lag, m.up, m.skipped, m.lastSuccess,
		m.captureTime, m.targets, m.discoveryErrs, m.discarded, m.pushes, m.pushBytes,
		m.pushRejected, m.forwarded, m.storeBytes, m.storeProfiles, m.pruned, m.saveErrors, m.ingestTime)
	return m
}

// forgetTarget drops a vanished target's series so that /metrics does not
// grow with every target ever seen.
func (m *metrics) forgetTarget(target string) {
	l := prometheus.Labels{"target": target}
	m.captures.DeletePartialMatch(l)
	m.failures.DeletePartialMatch(l)
	m.bytes.DeletePartialMatch(l)
	m.lag.DeletePartialMatch(l)
	m.up.DeletePartialMatch(l)
	m.skipped.DeletePartialMatch(l)
	m.lastSuccess.DeletePartialMatch(l)
}
