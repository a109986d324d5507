package profiles

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := storedCopy(t, "goroutine-current.pb.gz", Meta{Target: "http://c:3", Type: TypeGoroutine, Time: now})
			_, err := s.Save(c)
			errs <- err
		}()
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
