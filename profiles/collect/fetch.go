package collect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/leaklab/leaklab/profiles"
)

// serviceRefresh is how long a target's learned name is trusted before
// profiles.Fetch is asked to look it up again (a port may be reused by
// another service after a restart).
const serviceRefresh = 10 * time.Minute

// identity is what a target says it is, learned by profiles.Fetch (from
// the target's /metrics or command line) on the first capture.
type identity struct {
	service string
	variant string
	learned time.Time
}

// fetch captures one profile from t. The first capture of a target, and
// one every serviceRefresh, goes through profiles.Fetch, which also asks
// the target its name (an extra /metrics request and a regexp over it);
// the others reuse the name and take the lighter path below. On the
// collector's own CPU profile with 200 targets, that lookup was over a
// quarter of the time.
func (c *Collector) fetch(tr *targetRun, t *Target, typ string, labels map[string]string, timeout time.Duration) (*profiles.Captured, error) {
	id := tr.identity
	if id.learned.IsZero() || time.Since(id.learned) > serviceRefresh {
		cp, err := profiles.Fetch(c.fetchCtx, t.URL, profiles.FetchOptions{
			Type: typ, Timeout: timeout, NoGC: c.opts.NoGC, Client: c.opts.Client, Limits: c.opts.Limits, Labels: labels,
		})
		if err == nil {
			tr.identity = identity{service: cp.Service, variant: cp.Labels["variant"], learned: time.Now()}
		}
		return cp, err
	}
	cp, err := c.fetchKnown(t.URL, typ, timeout)
	if errors.Is(err, errTimedOut) {
		return nil, &profiles.FetchError{URL: t.URL, Err: fmt.Errorf("no complete answer within %s (the target is slow or stuck; raise --timeout)", timeout)}
	}
	if err != nil {
		// Let profiles.Fetch try once more and describe what is wrong, so
		// that failures read the same as 'leaklab capture's. It fails fast
		// for everything but a timeout, handled above.
		tr.identity = identity{}
		return c.fetch(tr, t, typ, labels, timeout)
	}
	cp.Service = id.service
	cp.Labels = maps.Clone(labels)
	if id.variant != "" && cp.Labels["variant"] == "" {
		cp.Labels["variant"] = id.variant
	}
	return cp, nil
}

var errTimedOut = errors.New("timed out")

// fetchKnown is the lighter path: one GET of the profile, read within
// the limits and checked to be a profile by profiles.Read.
func (c *Collector) fetchKnown(target, typ string, timeout time.Duration) (*profiles.Captured, error) {
	u, base, typ, err := profiles.ProfileURL(target, profiles.FetchOptions{Type: typ, NoGC: c.opts.NoGC})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.fetchCtx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, errTimedOut
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	cp, err := profiles.Read(resp.Body, c.opts.Limits)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, errTimedOut
		}
		return nil, err
	}
	cp.Target = base
	cp.Type = typ
	cp.Time = time.Now().UTC()
	if typ == profiles.TypeCPU {
		cp.Seconds = profiles.DefaultCPUSeconds
	}
	return cp, nil
}
