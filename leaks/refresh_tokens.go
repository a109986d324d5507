package leaks

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

func init() {
	register(&Service{
		Name:    "refresh-tokens",
		Kind:    KindHeap,
		Summary: "Memory grows steadily with logins even though the number of users is flat; heavy mobile users have tens of thousands of refresh tokens each.",
		Hints: []string{
			"The heap profile blames token issuing. Count the tokens per user: the list only ever grows.",
			"A token leaves the list only on logout. Apps that just log in again, and tokens that expire, are never removed; refresh adds a new token without retiring the old one.",
			"Rotate on refresh (replace, do not append), prune expired tokens when issuing, and cap tokens per user (revoke the oldest device).",
		},
		Culprit:  pkgPath + ".(*tokenStore).issue",
		Profile:  "heap",
		Retainer: "leaks.tokenStore.byUser",
		Rate:     100,
		Endpoints: []Endpoint{
			{Method: "POST", Path: "/login?user=alice&device=phone-{i}", Doc: "issues a refresh token for a user's device"},
			{Method: "POST", Path: "/refresh?user=alice&token=TOKEN", Doc: "exchanges a refresh token for a new one"},
			{Method: "POST", Path: "/logout?user=alice&token=TOKEN", Doc: "revokes a refresh token"},
			{Method: "GET", Path: "/tokens?user=alice", Doc: "counts a user's active refresh tokens"},
		},
		Symptom: Symptom{Metric: "go_gc_heap_live_bytes", Leaky: 4 << 20, Fixed: 1 << 20},
		Drive:   Drive{Warmup: 200, Requests: 2000, Concurrency: 8},
		Explanation: "Each login appends a 4 KiB token record (token, device, claims) to the user's list, and the list " +
			"shrinks only at logout, which almost nobody does. The fixed variant prunes expired tokens on every " +
			"issue, rotates on refresh, and keeps at most 10 tokens per user, revoking the oldest.",
		build: func(env *Env) (http.Handler, error) {
			s := &tokenStore{env: env, byUser: map[string][]*refreshToken{}, ttl: 30 * 24 * time.Hour, perUser: tokensPerUser}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /login", s.serveLogin)
			mux.HandleFunc("POST /refresh", s.serveRefresh)
			mux.HandleFunc("POST /logout", s.serveLogout)
			mux.HandleFunc("GET /tokens", s.serveCount)
			return mux, nil
		},
	})
}

const (
	tokenRecordBytes = 4 << 10
	tokensPerUser    = 10
)

type refreshToken struct {
	value   string
	device  string
	claims  []byte
	expires time.Time
}

type tokenStore struct {
	env     *Env
	mu      sync.Mutex
	byUser  map[string][]*refreshToken
	ttl     time.Duration
	perUser int
}

// issue creates a refresh token for user's device and remembers it.
func (s *tokenStore) issue(user, device string) *refreshToken {
	raw := make([]byte, 24)
	rand.Read(raw)
	t := &refreshToken{value: hex.EncodeToString(raw), device: device, claims: make([]byte, tokenRecordBytes), expires: time.Now().Add(s.ttl)}
	fill(t.claims, len(device))
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.byUser[user]
	if s.env.Fixed {
		now := time.Now()
		kept := list[:0]
		for _, old := range list {
			if old.expires.After(now) {
				kept = append(kept, old)
			}
		}
		clear(list[len(kept):])
		list = kept
		if len(list) >= s.perUser {
			copy(list, list[len(list)-s.perUser+1:])
			clear(list[s.perUser-1:])
			list = list[:s.perUser-1]
		}
	} else if !s.env.Budget.Take(tokenRecordBytes) {
		return t // at the leak cap: a token that is not kept
	}
	s.byUser[user] = append(list, t)
	return t
}

// revoke removes token from user's list and reports whether it was there.
func (s *tokenStore) revoke(user, token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.byUser[user]
	for i, t := range list {
		if t.value == token {
			s.byUser[user] = append(list[:i], list[i+1:]...)
			list[len(list)-1] = nil
			if !s.env.Fixed {
				s.env.Budget.Release(tokenRecordBytes)
			}
			return true
		}
	}
	return false
}

func (s *tokenStore) serveLogin(w http.ResponseWriter, r *http.Request) {
	user, device := r.URL.Query().Get("user"), r.URL.Query().Get("device")
	if user == "" {
		http.Error(w, "missing ?user=", http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"refresh_token": s.issue(user, device).value})
}

func (s *tokenStore) serveRefresh(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	user, old := q.Get("user"), q.Get("token")
	if s.env.Fixed && !s.revoke(user, old) {
		http.Error(w, "unknown refresh token", http.StatusUnauthorized)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"refresh_token": s.issue(user, "refresh").value})
}

func (s *tokenStore) serveLogout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !s.revoke(q.Get("user"), q.Get("token")) {
		http.Error(w, "unknown refresh token", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *tokenStore) serveCount(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	s.mu.Lock()
	n := len(s.byUser[user])
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"user": user, "tokens": n})
}
