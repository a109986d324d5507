package leaks

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

func init() {
	register(&Service{
		Name:    "io-bound",
		Kind:    KindLock,
		Summary: "Profile pages take 10 ms of backend time, yet the service serves only about 100 of them per second per process while the CPU idles; running more processes raises the ceiling, one process's worth at a time.",
		Hints: []string{
			"The CPU is idle, so look at where requests wait: the mutex profile (and go_sync_mutex_wait_total_seconds_total) points at the backend client.",
			"The client has a single connection to the profile store and a mutex around it, like database/sql with SetMaxOpenConns(1): one query at a time per process.",
			"Give the client a pool of connections (a buffered channel of them is enough) sized for the concurrency you expect. Running more processes only multiplies the pool by accident.",
		},
		Culprit:   pkgPath + ".(*profileStoreClient).query",
		Profile:   "mutex",
		Endpoints: []Endpoint{{Method: "GET", Path: "/profile?user={i}", Doc: "renders a user's profile, loaded from the profile store (10 ms away)"}},
		// The fixed variant waits on no lock of its own, but on a loaded
		// machine a goroutine preempted inside net/http's or the metrics'
		// locks makes others wait: 0.00048 s a request at a load average
		// of 11 (2026-12-03), against 0.05 to 0.09 for the leaky one.
		Symptom: Symptom{Metric: "go_sync_mutex_wait_total_seconds_total", PerRequest: true, Leaky: 0.005, Fixed: 0.002},
		Drive:   Drive{Warmup: 16, Requests: 120, Concurrency: 8},
		Explanation: "Requests spend their time waiting for the profile store (10 ms a query), which is the I/O-bound case: " +
			"the goroutines of one process can have any number of queries in flight. The leaky variant's client " +
			"serialises them on one connection behind a sync.Mutex, so a process completes at most 100 requests a " +
			"second and every extra client only adds queueing. That per-process bottleneck is exactly what " +
			"clustering multiplies away, which makes processes look like the fix. The fixed variant keeps a pool of " +
			"64 connections, and one process then serves as much as many.",
		build: func(env *Env) (http.Handler, error) {
			c := newProfileStoreClient(env.Fixed, profileStoreLatency)
			s := &profileService{store: c}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /profile", s.serve)
			return mux, nil
		},
	})
}

const (
	profileStoreLatency  = 10 * time.Millisecond
	profileStorePoolSize = 64
)

type profileService struct{ store *profileStoreClient }

func (s *profileService) serve(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if user == "" {
		http.Error(w, "missing ?user=", http.StatusBadRequest)
		return
	}
	p := s.store.query(user)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "user %s\nname %s\nfollowers %d\n", user, p.name, p.followers)
}

type userProfile struct {
	name      string
	followers int
}

// storeConn stands for one connection to the profile store.
type storeConn struct{ latency time.Duration }

// roundTrip stands for a query over the network: the goroutine waits, the
// CPU does not work.
func (c *storeConn) roundTrip(user string) userProfile {
	time.Sleep(c.latency)
	return userProfile{name: "User " + user, followers: len(user) * 37}
}

// profileStoreClient queries the profile store over its connections.
type profileStoreClient struct {
	mu   sync.Mutex // leaky: guards the one connection
	conn *storeConn
	pool chan *storeConn // fixed: idle connections
}

func newProfileStoreClient(fixed bool, latency time.Duration) *profileStoreClient {
	c := &profileStoreClient{}
	if !fixed {
		c.conn = &storeConn{latency: latency}
		return c
	}
	c.pool = make(chan *storeConn, profileStorePoolSize)
	for range profileStorePoolSize {
		c.pool <- &storeConn{latency: latency}
	}
	return c
}

// query loads one user's profile.
func (c *profileStoreClient) query(user string) userProfile {
	if c.pool != nil {
		conn := <-c.pool
		defer func() { c.pool <- conn }()
		return conn.roundTrip(user)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn.roundTrip(user)
}
