package leaks

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

func init() {
	register(&Service{
		Name:    "session-memorystore",
		Kind:    KindHeap,
		Summary: "Memory grows with every login and only a restart brings it back; the service logs everybody out each time it is restarted to reclaim memory.",
		Hints: []string{
			"The heap profile points at session creation: sessions are created at every login but never freed.",
			"The in-memory store has no expiry and no size limit; users who never log out (most of them) stay forever. This is why express-session warns against its MemoryStore in production.",
			"Give sessions an idle timeout, sweep expired ones, cap how many are kept (evict the least recently used), or keep sessions in a store built for it such as Redis.",
		},
		Culprit:  pkgPath + ".(*memoryStore).create",
		Profile:  "heap",
		Retainer: "leaks.memoryStore.sessions",
		Endpoints: []Endpoint{
			{Method: "POST", Path: "/login?user=user-{i}", Doc: "logs a user in and sets a session cookie"},
			{Method: "GET", Path: "/me", Doc: "shows the session named by the cookie"},
			{Method: "POST", Path: "/logout", Doc: "ends the session named by the cookie"},
		},
		Symptom: Symptom{Metric: "go_gc_heap_live_bytes", Leaky: 4 << 20, Fixed: 1536 << 10},
		Explanation: "A session store in a map, with no expiry, grows by one session per login for as long as the process " +
			"lives. The fixed variant expires sessions idle for longer than 30 minutes (a sweeper removes them every " +
			"minute) and keeps at most 128, evicting the least recently used first.",
		build: func(env *Env) (http.Handler, error) {
			st := &memoryStore{env: env, sessions: map[string]*list.Element{}, lru: list.New(), idleTTL: 30 * time.Minute, max: maxSessions}
			if env.Fixed {
				go st.sweep(env, time.Minute)
			}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /login", st.serveLogin)
			mux.HandleFunc("GET /me", st.serveMe)
			mux.HandleFunc("POST /logout", st.serveLogout)
			return mux, nil
		},
	})
}

const (
	sessionDataBytes = 16 << 10 // profile, cart, CSRF token...
	maxSessions      = 128
	sessionCookie    = "sid"
)

type session struct {
	id       string
	user     string
	data     []byte
	lastSeen time.Time
}

// memoryStore keeps sessions in process memory.
type memoryStore struct {
	env      *Env
	mu       sync.Mutex
	sessions map[string]*list.Element
	lru      *list.List // front: most recently used
	idleTTL  time.Duration
	max      int
}

// create starts a session for user.
func (st *memoryStore) create(user string) *session {
	id := make([]byte, 16)
	rand.Read(id)
	s := &session{id: hex.EncodeToString(id), user: user, data: make([]byte, sessionDataBytes), lastSeen: time.Now()}
	fill(s.data, len(user))
	if !st.env.Fixed && !st.env.Budget.Take(sessionDataBytes) {
		return s // at the leak cap: a session that is not kept
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sessions[s.id] = st.lru.PushFront(s)
	if st.env.Fixed {
		for st.lru.Len() > st.max {
			st.removeLocked(st.lru.Back())
		}
	}
	return s
}

func (st *memoryStore) removeLocked(el *list.Element) {
	st.lru.Remove(el)
	delete(st.sessions, el.Value.(*session).id)
	if !st.env.Fixed {
		st.env.Budget.Release(sessionDataBytes)
	}
}

func (st *memoryStore) get(id string) *session {
	st.mu.Lock()
	defer st.mu.Unlock()
	el, ok := st.sessions[id]
	if !ok {
		return nil
	}
	s := el.Value.(*session)
	if st.env.Fixed && time.Since(s.lastSeen) > st.idleTTL {
		st.removeLocked(el)
		return nil
	}
	s.lastSeen = time.Now()
	st.lru.MoveToFront(el)
	return s
}

// sweep removes idle sessions until the service stops.
func (st *memoryStore) sweep(env *Env, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-env.Context().Done():
			return
		case <-t.C:
		}
		st.mu.Lock()
		for el := st.lru.Back(); el != nil; {
			prev := el.Prev()
			if time.Since(el.Value.(*session).lastSeen) > st.idleTTL {
				st.removeLocked(el)
			}
			el = prev
		}
		st.mu.Unlock()
	}
}

func (st *memoryStore) serveLogin(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if user == "" {
		http.Error(w, "missing ?user=", http.StatusBadRequest)
		return
	}
	s := st.create(user)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	writeJSON(w, http.StatusOK, map[string]string{"user": user, "session": s.id})
}

func (st *memoryStore) serveMe(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	var s *session
	if err == nil {
		s = st.get(c.Value)
	}
	if s == nil {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": s.user})
}

func (st *memoryStore) serveLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		st.mu.Lock()
		if el, ok := st.sessions[c.Value]; ok {
			st.removeLocked(el)
		}
		st.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}
