package profiles

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/internal/testbin"
)

func storedCopy(t *testing.T, name string, meta Meta) *Captured {
	t.Helper()
	c, err := ReadFile(filepath.Join("testdata", name), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c.Meta.Target, c.Meta.Time, c.Meta.Service = meta.Target, meta.Time, meta.Service
	if meta.Type != "" {
		c.Meta.Type = meta.Type
	}
	return c
}

func TestStoreSaveListLoadRemove(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	saved := map[string]Meta{}
	for i, tc := range []struct {
		file, target, typ string
	}{
		{"heap-base.pb.gz", "http://a:1", TypeHeap},
		{"heap-current.pb.gz", "http://a:1", TypeHeap},
		{"goroutine-base.pb.gz", "http://b:2", TypeGoroutine},
	} {
		c := storedCopy(t, tc.file, Meta{Target: tc.target, Type: tc.typ, Time: t0.Add(time.Duration(i) * time.Minute), Service: "svc"})
		m, err := s.Save(c)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID == "" || c.ID != m.ID || m.Bytes == 0 || !strings.Contains(m.ID, tc.typ) {
			t.Errorf("saved %+v", m)
		}
		saved[tc.file] = m
	}
	all, err := s.List(Filter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("List: %v, %d entries", err, len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Time.Before(all[i-1].Time) {
			t.Errorf("List is not oldest first: %v before %v", all[i-1].Time, all[i].Time)
		}
	}
	filters := []struct {
		name string
		f    Filter
		want int
	}{
		{"target", Filter{Target: "http://a:1/"}, 2},
		{"type", Filter{Type: TypeGoroutine}, 1},
		{"service", Filter{Service: "other"}, 0},
		{"since", Filter{Since: t0.Add(time.Minute)}, 2},
		{"until", Filter{Until: t0.Add(time.Minute)}, 1},
		{"window", Filter{Since: t0.Add(time.Minute), Until: t0.Add(2 * time.Minute)}, 1},
	}
	for _, tc := range filters {
		got, err := s.List(tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("%s: %d entries (%v), want %d", tc.name, len(got), err, tc.want)
		}
	}

	m := saved["heap-current.pb.gz"]
	c, err := s.Load(m.ID[:len(m.ID)-2], Limits{}) // a unique prefix is enough
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != m.ID || c.Target != "http://a:1" || c.Samples != m.Samples {
		t.Errorf("loaded %+v, saved %+v", c.Meta, m)
	}
	orig := storedCopy(t, "heap-current.pb.gz", Meta{})
	if rep, err := Diff(orig, c, DiffOptions{}); err != nil {
		t.Error(err)
	} else if len(rep.Rows) != 0 {
		t.Errorf("the stored profile differs from the original: %d rows", len(rep.Rows))
	}
	if _, err := s.Load("2026", Limits{}); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	for _, bad := range []string{"nope", "../x", ".tmp-1", ""} {
		if _, err := s.Load(bad, Limits{}); err == nil || !strings.Contains(err.Error(), "no such profile") {
			t.Errorf("Load(%q): %v", bad, err)
		}
	}
	if _, err := s.Remove(m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(m.ID, Limits{}); err == nil {
		t.Error("removed profile still loads")
	}
	if files, _ := filepath.Glob(filepath.Join(s.Dir(), m.ID+"*")); len(files) != 0 {
		t.Errorf("files left after Remove: %v", files)
	}
}

// Many saves at once, from many goroutines: every one lands, none is
// lost or damaged, and there is no shared file for them to fight over.
func TestStoreConcurrentSaves(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	now := time.Now().UTC()
	saveAtOnce(t, s, n, now)
}

// saveAtOnce saves n copies of one profile with the same time from n
// goroutines at once, and checks every one landed and loads.
func saveAtOnce(t *testing.T, s *Store, n int, now time.Time) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.Save(storedCopy(t, "goroutine-current.pb.gz", Meta{Target: "http://c:3", Type: TypeGoroutine, Time: now}))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	metas, err := s.List(Filter{})
	if err != nil || len(metas) != n {
		t.Fatalf("%d entries (%v), want %d", len(metas), err, n)
	}
	for _, m := range metas {
		if _, err := s.Load(m.ID, Limits{}); err != nil {
			t.Errorf("%s: %v", m.ID, err)
		}
	}
}

// What a killed capture can leave (a temporary file, a profile whose
// metadata was never written) is invisible to List and removed by Prune
// once old; a fresh one is left alone, its writer may be alive.
func TestStoreLeftoversOfKilledCaptures(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * leftoverAge)
	for _, name := range []string{".tmp-123", "20261125-100000-heap-abcdef.pb.gz", ".tmp-fresh"} {
		p := filepath.Join(s.Dir(), name)
		if err := os.WriteFile(p, []byte("half a profile"), 0o600); err != nil {
			t.Fatal(err)
		}
		if name != ".tmp-fresh" {
			os.Chtimes(p, old, old)
		}
	}
	if metas, err := s.List(Filter{}); err != nil || len(metas) != 0 {
		t.Fatalf("leftovers listed: %v %v", metas, err)
	}
	if _, err := s.Prune(PruneOptions{OlderThan: time.Hour}); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(s.Dir())
	if len(left) != 1 || left[0].Name() != ".tmp-fresh" {
		t.Errorf("after prune: %v", left)
	}
}

func TestStorePrune(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, age := range []time.Duration{72 * time.Hour, 49 * time.Hour, 2 * time.Hour, time.Minute} {
		if _, err := s.Save(storedCopy(t, "heap-base.pb.gz", Meta{Target: "http://a:1", Type: TypeHeap, Time: now.Add(-age)})); err != nil {
			t.Fatal(err)
		}
	}
	dry, err := s.Prune(PruneOptions{OlderThan: 48 * time.Hour, Now: now, DryRun: true})
	if err != nil || len(dry) != 2 {
		t.Fatalf("dry run: %d (%v)", len(dry), err)
	}
	if all, _ := s.List(Filter{}); len(all) != 4 {
		t.Fatalf("dry run removed something: %d left", len(all))
	}
	removed, err := s.Prune(PruneOptions{OlderThan: 48 * time.Hour, Now: now, Keep: 3})
	if err != nil || len(removed) != 1 {
		t.Fatalf("prune keeping 3: removed %d (%v)", len(removed), err)
	}
	removed, err = s.Prune(PruneOptions{OlderThan: time.Hour, Now: now})
	if err != nil || len(removed) != 2 {
		t.Fatalf("prune older than 1h: removed %d (%v)", len(removed), err)
	}
	if all, _ := s.List(Filter{}); len(all) != 1 || now.Sub(all[0].Time) != time.Minute {
		t.Errorf("left %+v", all)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("LEAKLAB_HOME", "/x/home")
	if d, _ := DefaultDir(); d != "/x/home" {
		t.Errorf("with LEAKLAB_HOME: %s", d)
	}
	t.Setenv("LEAKLAB_HOME", "")
	t.Setenv("XDG_DATA_HOME", "/x/data")
	if d, _ := DefaultDir(); d != "/x/data/leaklab" {
		t.Errorf("with XDG_DATA_HOME: %s", d)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/x/user")
	if d, _ := DefaultDir(); d != "/x/user/.local/share/leaklab" {
		t.Errorf("default: %s", d)
	}
}

// TestSaveRaw stores profiles through SaveRaw: the gzip a profile was read
// from is stored byte for byte; anything else (uncompressed bytes, another
// profile's gzip, nothing) falls back to gzipping the profile, so the
// store holds a valid gzipped pprof file either way.
func TestSaveRaw(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	current, err := os.ReadFile(filepath.Join("testdata", "heap-current.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(filepath.Join("testdata", "heap-base.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	uncompressed := storedCopy(t, "heap-current.pb.gz", Meta{}).data
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		name   string
		raw    []byte
		asIs   bool // stored byte for byte
		reason string
	}{
		{"the gzip it was read from", current, true, ""},
		{"uncompressed", uncompressed, false, "not gzip"},
		{"another profile's gzip", base, false, "the recorded size is not this profile's"},
		{"nil", nil, false, "no bytes"},
		{"gzip header only", current[:10], false, "too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Read(bytes.NewReader(current), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			c.Target, c.Type, c.Time = "http://a:1", TypeHeap, t0.Add(time.Duration(i)*time.Minute)
			m, err := s.SaveRaw(c, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := os.ReadFile(filepath.Join(s.Dir(), m.ID+profileExt))
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Equal(stored, tc.raw); got != tc.asIs {
				t.Errorf("stored bytes equal the given ones: %v, want %v (%s)", got, tc.asIs, tc.reason)
			}
			if m.Bytes != int64(len(stored)) || c.ID != m.ID || c.Bytes != m.Bytes {
				t.Errorf("meta says %d bytes (captured %s, %d), the file has %d", m.Bytes, c.ID, c.Bytes, len(stored))
			}
			// Whichever way it was written, the file is a gzipped pprof
			// profile with the profile that was read.
			if len(stored) < 2 || stored[0] != 0x1f || stored[1] != 0x8b {
				t.Errorf("the stored file is not gzipped")
			}
			p, err := profile.Parse(bytes.NewReader(stored))
			if err != nil {
				t.Fatalf("the stored file does not parse: %v", err)
			}
			if len(p.Sample) != c.Samples {
				t.Errorf("the stored profile has %d samples, want %d", len(p.Sample), c.Samples)
			}
			loaded, err := s.Load(m.ID, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if loaded.Meta.Target != "http://a:1" || loaded.Samples != c.Samples {
				t.Errorf("loaded %+v", loaded.Meta)
			}
			if rep, err := Diff(c, loaded, DiffOptions{By: ByStack}); err != nil || len(rep.Rows) != 0 {
				t.Errorf("the stored profile differs from the one read: %v, %d rows", err, len(rep.Rows))
			}
		})
	}
	for _, name := range testbin.DirNames(t, s.Dir()) {
		if strings.HasPrefix(name, tempPrefix) {
			t.Errorf("SaveRaw left a temporary file: %s", name)
		}
	}
}

// TestFetchKeepRawSaveRaw fetches from a real service through a loopback
// proxy that records what it served: with KeepRaw the body is kept, SaveRaw
// stores exactly those bytes, and go tool pprof reads the stored file.
func TestFetchKeepRawSaveRaw(t *testing.T) {
	t.Parallel()
	svc := testbin.StartService(t, "unbounded-cache", false)
	proxy := testbin.NewRecordingProxy(t, svc.URL)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{TypeHeap, TypeGoroutine} {
		t.Run(typ, func(t *testing.T) {
			proxy.Bodies() // forget the other subtest's
			c, err := Fetch(context.Background(), proxy.URL, FetchOptions{Type: typ, KeepRaw: true, NoServiceName: true})
			if err != nil {
				t.Fatal(err)
			}
			got := proxy.Bodies()
			if len(got) != 1 || !bytes.Equal(c.Raw(), got[0]) {
				t.Fatalf("Raw() holds %d bytes; the target served %d bodies", len(c.Raw()), len(got))
			}
			m, err := s.SaveRaw(c, c.Raw())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(s.Dir(), m.ID+profileExt)
			stored, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stored, got[0]) {
				t.Errorf("stored %d bytes, not the %d the target served", len(stored), len(got[0]))
			}
			out, err := exec.Command("go", "tool", "pprof", "-raw", path).CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("Samples:")) {
				t.Errorf("go tool pprof -raw %s: %v\n%s", path, err, out)
			}
		})
	}
	// Without KeepRaw nothing extra is held.
	c, err := Fetch(context.Background(), svc.URL, FetchOptions{NoServiceName: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Raw() != nil {
		t.Errorf("Raw() without KeepRaw holds %d bytes", len(c.Raw()))
	}
}

func TestFilterLabels(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ids := map[string]string{}
	for i, tc := range []struct {
		name   string
		labels map[string]string
	}{
		{"staging-a", map[string]string{"env": "staging", "team": "a"}},
		{"staging-b", map[string]string{"env": "staging", "team": "b"}},
		{"prod", map[string]string{"env": "prod"}},
		{"none", nil},
	} {
		c := storedCopy(t, "goroutine-base.pb.gz", Meta{Target: "http://a:1", Time: t0.Add(time.Duration(i) * time.Minute)})
		c.Labels = tc.labels
		m, err := s.Save(c)
		if err != nil {
			t.Fatal(err)
		}
		ids[m.ID] = tc.name
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"no labels matches all", nil, "staging-a staging-b prod none"},
		{"one label", map[string]string{"env": "staging"}, "staging-a staging-b"},
		{"all must match", map[string]string{"env": "staging", "team": "b"}, "staging-b"},
		{"no such value", map[string]string{"env": "dev"}, ""},
		{"empty value matches the label's absence", map[string]string{"team": ""}, "prod none"},
		{"a label no profile has", map[string]string{"region": "eu"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := listedNames(t, s, Filter{Labels: tc.labels}, ids); got != tc.want {
				t.Errorf("List(Labels %v) = %v, want %s", tc.labels, got, tc.want)
			}
		})
	}
}

// listedNames lists the store through f and names what it lists by names
// (ID to name), space-separated, oldest first.
func listedNames(t *testing.T, s *Store, f Filter, names map[string]string) string {
	t.Helper()
	ms, err := s.List(f)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, names[m.ID])
	}
	return strings.Join(got, " ")
}

// forceIDs makes the random part of new IDs come from next (called with
// the draw's number, from 0) for the rest of the test.
func forceIDs(t *testing.T, next func(n int) [3]byte) {
	t.Helper()
	orig := idRandom
	var mu sync.Mutex
	n := 0
	idRandom = func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		r := next(n)
		n++
		copy(b, r[:])
		return nil
	}
	t.Cleanup(func() { idRandom = orig })
}

// An ID already taken (same second, type and random part) is not a lost
// capture: save draws a fresh one, and gives up, leaving nothing behind,
// only when every draw is taken.
func TestStoreIDCollision(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	save := func() (Meta, error) {
		return s.Save(storedCopy(t, "goroutine-current.pb.gz", Meta{Target: "http://c:3", Type: TypeGoroutine, Time: now}))
	}
	// Three draws of the taken ID, then fresh ones.
	forceIDs(t, func(n int) [3]byte {
		if n < 4 {
			return [3]byte{}
		}
		return [3]byte{0, 0, byte(n)}
	})
	first, err := save()
	if err != nil {
		t.Fatal(err)
	}
	second, err := save()
	if err != nil {
		t.Fatalf("save after an ID clash: %v", err)
	}
	if second.ID == first.ID || !strings.HasSuffix(second.ID, "-000004") {
		t.Errorf("IDs %s and %s: want the second drawn afresh after three clashes", first.ID, second.ID)
	}

	// The metadata name taken without the profile's (a leftover): the
	// half-placed profile is removed and a fresh ID drawn.
	orphan := "20261125-100000-goroutine-0000ff"
	if err := os.WriteFile(filepath.Join(s.Dir(), orphan+metaExt), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	forceIDs(t, func(n int) [3]byte {
		if n == 0 {
			return [3]byte{0, 0, 0xff}
		}
		return [3]byte{0, 1, 0}
	})
	third, err := save()
	if err != nil || third.ID != "20261125-100000-goroutine-000100" {
		t.Fatalf("save whose metadata name is taken: %+v, %v", third, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), orphan+profileExt)); err == nil {
		t.Errorf("the clashing attempt left %s%s", orphan, profileExt)
	}
	os.Remove(filepath.Join(s.Dir(), orphan+metaExt))

	// Every draw taken: an error, and nothing new in the store.
	forceIDs(t, func(int) [3]byte { return [3]byte{} })
	if m, err := save(); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Errorf("save with every ID taken: %+v, %v; want an error saying so", m, err)
	}
	want := []string{first.ID, second.ID, third.ID}
	metas, err := s.List(Filter{})
	if err != nil || len(metas) != len(want) {
		t.Fatalf("List: %d entries (%v), want %v", len(metas), err, want)
	}
	for _, m := range metas {
		c, err := s.Load(m.ID, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		if _, err := c.Profile(); err != nil {
			t.Errorf("%s: %v", m.ID, err)
		}
	}
	if files := testbin.DirNames(t, s.Dir()); len(files) != 2*len(want) {
		t.Errorf("store holds %v, want the profile and metadata of %v only", files, want)
	}
}

// Concurrent saves in one second that all draw the same ID first: each
// lands under its own.
func TestStoreConcurrentIDCollisions(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// n saves share n clashing draws, so none can use up all idAttempts.
	const n = 6
	forceIDs(t, func(i int) [3]byte {
		if i < n {
			return [3]byte{}
		}
		return [3]byte{1, byte(i >> 8), byte(i)}
	})
	now := time.Now().UTC()
	saveAtOnce(t, s, n, now)
}

// A target selects what capture stored from it however it is written:
// capture takes 127.0.0.1:8080 and stores http://127.0.0.1:8080. Targets
// that are no fetchable URL (push://APP) match as stored.
func TestFilterTargetNormalised(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ids := map[string]string{}
	for i, target := range []string{"http://127.0.0.1:8080", "https://shop.internal:6060/api", "push://leaklab.shop", "http://127.0.0.1:9090"} {
		_, base, _, err := ProfileURL(target, FetchOptions{})
		if err == nil && base != target {
			t.Fatalf("%s is not stored as capture stores it (%s)", target, base)
		}
		m, err := s.Save(storedCopy(t, "goroutine-base.pb.gz", Meta{Target: target, Time: t0.Add(time.Duration(i) * time.Minute)}))
		if err != nil {
			t.Fatal(err)
		}
		ids[m.ID] = target
	}
	for _, tc := range []struct{ filter, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/debug/pprof/goroutine?debug=1", "http://127.0.0.1:8080"},
		{"https://shop.internal:6060/api/", "https://shop.internal:6060/api"},
		{"https://shop.internal:6060/api/debug/pprof/heap", "https://shop.internal:6060/api"},
		{"shop.internal:6060/api", ""}, // http, not https: another target
		{"push://leaklab.shop", "push://leaklab.shop"},
		{"push://leaklab.shop/", "push://leaklab.shop"},
		{"leaklab.shop", ""},
		{"127.0.0.1", ""},
	} {
		if got := listedNames(t, s, Filter{Target: tc.filter}, ids); got != tc.want {
			t.Errorf("List(Target %q) = %q, want %q", tc.filter, got, tc.want)
		}
	}
}

// TARGET@AGO names the stored profile of a target taken closest to that
// long ago, of the type its URL says (else heap): "this service's heap now
// against an hour ago" from collected history.
func TestLoadRefTargetAgo(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ids := map[string]string{}
	for _, tc := range []struct {
		name, file, typ string
		ago             time.Duration
	}{
		{"heap 2h", "heap-base.pb.gz", TypeHeap, 2 * time.Hour},
		{"heap 1h", "heap-current.pb.gz", TypeHeap, time.Hour + 3*time.Minute},
		{"heap now", "heap-current.pb.gz", TypeHeap, time.Minute},
		{"goroutine 1h", "goroutine-base.pb.gz", TypeGoroutine, time.Hour},
	} {
		m, err := s.Save(storedCopy(t, tc.file, Meta{Target: "http://127.0.0.1:8080", Type: tc.typ, Time: now.Add(-tc.ago)}))
		if err != nil {
			t.Fatal(err)
		}
		ids[tc.name] = m.ID
	}
	opts := RefOptions{Store: s}
	for ref, want := range map[string]string{
		"http://127.0.0.1:8080@1h":                       "heap 1h",
		"127.0.0.1:8080@90m":                             "heap 1h",
		"127.0.0.1:8080@3h":                              "heap 2h",
		"http://127.0.0.1:8080/@0s":                      "heap now",
		"http://127.0.0.1:8080/debug/pprof/goroutine@0s": "goroutine 1h",
	} {
		c, err := LoadRef(context.Background(), ref, opts)
		if err != nil || c.ID != ids[want] {
			t.Errorf("%s: %v, got %v, want the %s profile (%s)", ref, err, c, want, ids[want])
		}
	}
	gor := RefOptions{Store: s, Fetch: FetchOptions{Type: TypeGoroutine}}
	if c, err := LoadRef(context.Background(), "127.0.0.1:8080@1h", gor); err != nil || c.ID != ids["goroutine 1h"] {
		t.Errorf("with the goroutine type asked for: %v, %v", c, err)
	}
	for _, ref := range []string{"push://shop@1h", "127.0.0.1:9090@1h"} {
		if _, err := LoadRef(context.Background(), ref, opts); err == nil || !strings.Contains(err.Error(), "no stored heap profile") {
			t.Errorf("%s: err %v, want no stored heap profile", ref, err)
		}
	}
	if _, _, ok := splitTargetAgo("http://user:secret@127.0.0.1:8080"); ok {
		t.Error("user info taken for TARGET@AGO")
	}
}

// RemoveAll resolves every ID before removing any, so one typo removes
// nothing; otherwise it removes them all, in the order given.
func TestStoreRemoveAll(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 3 {
		m, err := s.Save(storedCopy(t, "heap-base.pb.gz", Meta{Target: "http://a:1", Type: TypeHeap, Time: now.Add(time.Duration(i) * time.Minute)}))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	if _, err := s.RemoveAll([]string{ids[0], "no-such-id"}); err == nil {
		t.Fatal("RemoveAll with an unknown ID succeeded")
	}
	if all, _ := s.List(Filter{}); len(all) != 3 {
		t.Fatalf("a typo removed something: %d left", len(all))
	}
	removed, err := s.RemoveAll([]string{ids[2], ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || removed[0].ID != ids[2] || removed[1].ID != ids[0] {
		t.Errorf("removed %+v, want %s then %s", removed, ids[2], ids[0])
	}
	if all, _ := s.List(Filter{}); len(all) != 1 || all[0].ID != ids[1] {
		t.Errorf("left %+v, want only %s", all, ids[1])
	}
}
