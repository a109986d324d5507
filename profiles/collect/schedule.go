package collect

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leaklab/leaklab/profiles"
)

// targetRun is one target's schedule: a goroutine that waits for its next
// slot, takes a concurrency token, captures every type, and works out when
// to come back.
type targetRun struct {
	target atomic.Pointer[Target] // labels may change on a refresh
	cancel context.CancelFunc     // ends the schedule (as Run's context ending does)
	// fetchCtx is what the run's captures use: a child of the collector's
	// fetchCtx, so that stopping gives them the grace period, but also
	// cancelled when the target leaves discovery, so that a capture in
	// flight for a target that is gone ends at once.
	fetchCtx  context.Context
	stopFetch context.CancelFunc
	removed   atomic.Bool   // the target left discovery: forget its series
	done      chan struct{} // closed once the loop has ended (and its series are forgotten)
	// failing and identity are touched only by the run's goroutine.
	failing  map[string]bool // type → failing
	identity identity
}

// pull runs the schedules until ctx ends, refreshing the targets every
// Refresh, then waits for in-flight captures (cancelling them after Grace).
func (c *Collector) pull(ctx context.Context) error {
	targets, err := c.opts.Discover.Targets(ctx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	running := map[string]*targetRun{}
	// leaving are the runs of targets gone from discovery whose loop may
	// not have ended yet: a target that comes back waits for its old loop,
	// so that two loops never capture it at once.
	leaving := map[string]*targetRun{}
	update := func(ts []Target) {
		ts = c.opts.Shard.filter(ts)
		for url, tr := range leaving {
			select {
			case <-tr.done:
				delete(leaving, url)
			default:
			}
		}
		seen := map[string]bool{}
		for _, t := range ts {
			seen[t.URL] = true
			if tr, ok := running[t.URL]; ok {
				if !maps.Equal(tr.target.Load().Labels, t.Labels) {
					tr.target.Store(&t)
				}
				continue
			}
			tctx, cancel := context.WithCancel(ctx)
			tr := &targetRun{cancel: cancel, failing: map[string]bool{}, done: make(chan struct{})}
			tr.fetchCtx, tr.stopFetch = context.WithCancel(c.fetchCtx)
			tr.target.Store(&t)
			running[t.URL] = tr
			prev := leaving[t.URL]
			delete(leaving, t.URL)
			c.mu.Lock()
			if c.stats[t.URL] == nil {
				c.stats[t.URL] = &TargetSummary{Target: t.URL}
			}
			c.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(tr.done)
				if prev != nil {
					// Its loop was cancelled, capture included, so this
					// is short; it also forgets the old series before
					// this loop makes new ones.
					<-prev.done
				}
				if tctx.Err() == nil {
					c.runTarget(tctx, tr)
				}
				if tr.removed.Load() {
					// Only now: the loop can no longer set a series.
					c.m.forgetTarget(tr.target.Load().URL)
					if c.fleet != nil {
						c.fleet.forget(tr.target.Load().URL)
					}
				}
			}()
		}
		for url, tr := range running {
			if !seen[url] {
				tr.removed.Store(true)
				tr.cancel()
				tr.stopFetch()
				delete(running, url)
				leaving[url] = tr
				c.log.Info("target gone from discovery", "target", url)
			}
		}
		c.m.targets.Set(float64(len(running)))
	}
	update(targets)
	c.log.Info("collecting", "targets", len(targets), "types", strings.Join(c.opts.Types, ","), "every", c.opts.Every)

	refresh := time.NewTicker(c.opts.Refresh)
	defer refresh.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-refresh.C:
			ts, err := c.opts.Discover.Targets(ctx)
			if err != nil {
				if ctx.Err() != nil {
					break loop
				}
				c.m.discoveryErrs.Inc()
				c.log.Warn("target discovery failed; keeping the previous targets", "err", err)
				continue
			}
			update(ts)
		}
	}

	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(c.opts.Grace):
		c.cancelFetch() // what has not finished now is discarded, never half-stored
		<-done
	}
	return nil
}

// runTarget is one target's loop. Each target starts at a random phase
// within the interval (the jitter), so that hundreds of targets do not
// all fire at once, and keeps that phase while it succeeds; a failing
// target is retried after an exponential, jittered backoff.
func (c *Collector) runTarget(ctx context.Context, tr *targetRun) {
	every := c.opts.Every
	url := tr.target.Load().URL
	next := time.Now().Add(rand.N(every))
	fails := 0
	for {
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		c.m.lag.WithLabelValues(url).Set(max(0, time.Since(next).Seconds()))
		ok := c.captureRound(tr)
		<-c.sem
		if tr.fetchCtx.Err() != nil {
			return // stopping, or the target is gone
		}
		if ok {
			if fails > 0 {
				c.log.Info("target is back", "target", url)
			}
			fails = 0
			c.m.up.WithLabelValues(url).Set(1)
			next = next.Add(every)
			if now := time.Now(); next.Before(now) {
				// The round overran its interval: skip the slots already
				// missed rather than firing them back to back.
				missed := now.Sub(next)/every + 1
				next = next.Add(missed * every)
				c.m.skipped.WithLabelValues(url).Add(float64(missed))
			}
			continue
		}
		fails++
		c.m.up.WithLabelValues(url).Set(0)
		wait := backoff(every, c.opts.MaxBackoff, fails)
		if fails == 1 {
			c.log.Warn("target failing; backing off", "target", url, "err", c.lastError(url), "retry_in", wait.Round(time.Second))
		}
		next = time.Now().Add(wait)
	}
}

// backoff is the wait after the n-th failure in a row: the interval
// doubled per failure, capped, ±20% so failing targets do not retry in
// lockstep.
func backoff(every, maxWait time.Duration, n int) time.Duration {
	d := every
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// captureRound captures every type from the target and reports whether
// at least one was stored.
func (c *Collector) captureRound(tr *targetRun) bool {
	t := tr.target.Load()
	stored := false
	var round []*profiles.Captured // what detection reads
	defer func() {
		if c.fleet != nil && tr.fetchCtx.Err() == nil {
			c.fleet.observe(tr.fetchCtx, t.URL, round, c.opts.Timeout)
		}
	}()
	for _, typ := range c.opts.Types {
		if tr.fetchCtx.Err() != nil {
			return stored
		}
		start := time.Now()
		labels := make(map[string]string, len(t.Labels)+1)
		maps.Copy(labels, t.Labels)
		labels[LabelCollected] = "pull"
		timeout := c.opts.Timeout
		if typ == profiles.TypeCPU {
			timeout += profiles.DefaultCPUSeconds * time.Second
		}
		cp, err := c.fetch(tr, t, typ, labels, timeout)
		var size int64
		reason := ""
		if err != nil {
			reason = failureReason(err)
		} else if size, err = c.deliver(cp, cp.Raw(), nil); err != nil {
			reason = "store"
		}
		if err != nil {
			if c.fetchCtx.Err() != nil {
				c.m.discarded.Inc()
				c.mu.Lock()
				c.summary.Discarded++
				c.mu.Unlock()
				return stored
			}
			if tr.fetchCtx.Err() != nil {
				return stored // the target left discovery: not its failure
			}
			c.recordFailure(tr, t.URL, typ, reason, err)
			if reason == "timeout" || reason == "unreachable" {
				break // the other types would fail the same way
			}
			continue
		}
		stored = true
		if c.fleet != nil && detectTypes[typ] {
			round = append(round, cp)
		}
		if tr.failing[typ] {
			tr.failing[typ] = false
		}
		c.m.captureTime.Observe(time.Since(start).Seconds())
		c.m.captures.WithLabelValues(t.URL, typ).Inc()
		c.m.bytes.WithLabelValues(t.URL, typ).Add(float64(size))
		c.m.lastSuccess.WithLabelValues(t.URL).SetToCurrentTime()
		c.mu.Lock()
		st := c.stats[t.URL]
		st.Captures++
		st.Bytes += size
		st.Service = cp.Service
		c.summary.Captures++
		c.summary.Bytes += size
		c.mu.Unlock()
	}
	return stored
}

func (c *Collector) recordFailure(tr *targetRun, url, typ, reason string, err error) {
	c.m.failures.WithLabelValues(url, typ, reason).Inc()
	c.mu.Lock()
	st := c.stats[url]
	st.Failures++
	st.LastError = err.Error()
	c.summary.Failures++
	c.mu.Unlock()
	if !tr.failing[typ] {
		tr.failing[typ] = true
		c.log.Warn("capture failed", "target", url, "type", typ, "reason", reason, "err", err)
	}
}

func (c *Collector) lastError(url string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stats[url]; st != nil {
		return st.LastError
	}
	return ""
}

// failureReason names a failed fetch for the failures metric, from the
// error types the profiles package returns.
func failureReason(err error) string {
	var status *profiles.StatusError
	var notProfile *profiles.NotAProfileError
	var tooLarge *profiles.LimitError
	var timeout *profiles.TimeoutError
	switch {
	case errors.As(err, &status):
		return "status"
	case errors.As(err, &notProfile):
		return "not_profile"
	case errors.As(err, &tooLarge):
		return "too_large"
	case errors.As(err, &timeout):
		return "timeout"
	}
	return "unreachable"
}

func sortTargets(ts []TargetSummary) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Target < ts[j].Target })
}
