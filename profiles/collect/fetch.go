package collect

import (
	"time"

	"github.com/leaklab/leaklab/profiles"
)

// serviceRefresh is how long a target's learned name is trusted before
// profiles.Fetch is asked to look it up again (a port may be reused by
// another service after a restart).
const serviceRefresh = 10 * time.Minute

// identity is what a target says it is, learned by profiles.Fetch (from
// the target's /metrics or command line).
type identity struct {
	service string
	variant string
	learned time.Time
}

// fetch captures one profile from t. The first capture of a target, the
// first after a failure or after a lookup that found no name, and one
// every serviceRefresh let profiles.Fetch ask the target its name (an extra /metrics request and a regexp over
// it); the others reuse the name (NoServiceName). On the collector's own
// CPU profile with 200 targets, that lookup was over a quarter of the
// time.
func (c *Collector) fetch(tr *targetRun, t *Target, typ string, labels map[string]string, timeout time.Duration) (*profiles.Captured, error) {
	id := tr.identity
	known := !id.learned.IsZero() && time.Since(id.learned) < serviceRefresh
	cp, err := profiles.Fetch(tr.fetchCtx, t.URL, profiles.FetchOptions{
		Type: typ, Timeout: timeout, NoGC: c.opts.NoGC, Client: c.opts.Client, Limits: c.opts.Limits,
		Labels: labels, NoServiceName: known, KeepRaw: true, // stored and forwarded as fetched
	})
	switch {
	case err != nil:
		tr.identity = identity{} // it may come back as something else
	case known:
		cp.Service = id.service
		if id.variant != "" && cp.Labels["variant"] == "" {
			cp.Labels["variant"] = id.variant
		}
	case cp.Service == "":
		// No answer (a lookup that ran out of time on a busy target, or
		// a target with no name to give) is not a name to trust for
		// serviceRefresh: the next capture asks again.
		tr.identity = identity{}
	default:
		tr.identity = identity{service: cp.Service, variant: cp.Labels["variant"], learned: time.Now()}
	}
	return cp, err
}
