package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/leaklab/leaklab/profiles"
)

// maxDiffViews bounds the pprof web UIs the collector keeps open for
// /suspects' diff links: each holds two parsed profiles.
const maxDiffViews = 4

// handleSuspects adds GET /suspects (JSON when asked with Accept:
// application/json, else HTML) and the pprof diff views its links open.
func (c *Collector) handleSuspects(mux *http.ServeMux) {
	mux.HandleFunc("GET /suspects", func(w http.ResponseWriter, r *http.Request) {
		sus := c.Suspects()
		if wantsJSON(r) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(sus)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := writeSuspectsHTML(w, sus, c.fleet != nil, c.opts.Store != nil); err != nil {
			c.log.Warn("writing /suspects", "err", err)
		}
	})
	mux.HandleFunc("GET /suspects/diff/{base}/{current}/ui/", c.serveDiff)
	mux.HandleFunc("GET /suspects/diff/{base}/{current}/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ui/", http.StatusTemporaryRedirect)
	})
}

// wantsJSON says whether the request asks for JSON: Accept names
// application/json (before text/html, if both), or ?format=json.
func wantsJSON(r *http.Request) bool {
	if r.URL.Query().Get("format") == "json" {
		return true
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json":
			return true
		case "text/html":
			return false
		}
	}
	return false
}

// storeID is what a stored profile's ID looks like; anything else is
// refused before it reaches the store.
var storeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// serveDiff serves pprof's web UI on the diff of two stored profiles,
// base scaled by -1 and merged with current, as 'leaklab diff --http'.
func (c *Collector) serveDiff(w http.ResponseWriter, r *http.Request) {
	base, cur := r.PathValue("base"), r.PathValue("current")
	if c.opts.Store == nil {
		http.Error(w, "this collector keeps no store (--no-store): there are no profiles to diff", http.StatusNotFound)
		return
	}
	if !storeID.MatchString(base) || !storeID.MatchString(cur) {
		http.Error(w, "not a stored profile ID", http.StatusBadRequest)
		return
	}
	h, err := c.views.get(c.opts.Store, c.opts.Limits, base, cur)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	http.StripPrefix("/suspects/diff/"+base+"/"+cur+"/ui", h).ServeHTTP(w, r)
}

// diffViews are the open pprof UIs, newest last.
type diffViews struct {
	mu    sync.Mutex
	open  []*diffView
	start sync.Mutex // one UI starts at a time: each parses two profiles
}

type diffView struct {
	key    string
	h      http.Handler
	cancel context.CancelFunc
}

func (v *diffViews) get(store *profiles.Store, limits profiles.Limits, base, cur string) (http.Handler, error) {
	key := base + "/" + cur
	if h := v.lookup(key); h != nil {
		return h, nil
	}
	v.start.Lock()
	defer v.start.Unlock()
	if h := v.lookup(key); h != nil {
		return h, nil
	}
	b, err := store.Load(base, limits)
	if err != nil {
		return nil, fmt.Errorf("base profile: %v", err)
	}
	cp, err := store.Load(cur, limits)
	if err != nil {
		return nil, fmt.Errorf("current profile: %v", err)
	}
	dp, err := profiles.DiffProfile(b, cp)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := profiles.WebUI(ctx, dp, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.open = append(v.open, &diffView{key: key, h: h, cancel: cancel})
	if len(v.open) > maxDiffViews {
		v.open[0].cancel()
		v.open = v.open[1:]
	}
	return h, nil
}

func (v *diffViews) lookup(key string) http.Handler {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, dv := range v.open {
		if dv.key == key {
			// most recently used last
			v.open = append(append(v.open[:i:i], v.open[i+1:]...), dv)
			return dv.h
		}
	}
	return nil
}

// close ends every open UI.
func (v *diffViews) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, dv := range v.open {
		dv.cancel()
	}
	v.open = nil
}
