package profiles

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/atomicfile"
)

// The store keeps each profile as two files in one directory:
// ID.pb.gz (the gzipped profile) and ID.json (its Meta). There is no
// shared index file: the set of .json files is the index. Two captures at
// once therefore never contend for, or corrupt, a common file, and no lock
// is needed. Each file is written under a temporary name and linked into
// place; the .json is written last and is the commit point, so a capture
// killed at any moment leaves either nothing visible or a complete entry.
// Leftovers of killed captures (temporary files, a .pb.gz without .json)
// are invisible to List and removed by Prune.
const (
	profileExt  = ".pb.gz"
	metaExt     = ".json"
	tempPrefix  = ".tmp-"
	storeSubdir = "profiles"
	// leftoverAge is how old a temporary file must be before Prune
	// assumes its writer is dead.
	leftoverAge = time.Hour
)

// Store is the local profile store: a directory of captured profiles.
type Store struct {
	dir string
}

// DefaultDir is where the store lives: $LEAKLAB_HOME, else
// $XDG_DATA_HOME/leaklab, else ~/.local/share/leaklab.
func DefaultDir() (string, error) {
	if d := os.Getenv("LEAKLAB_HOME"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "leaklab"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no store directory: set LEAKLAB_HOME (%v)", err)
	}
	return filepath.Join(home, ".local", "share", "leaklab"), nil
}

// Open opens (creating if needed) the store rooted at dir.
func Open(dir string) (*Store, error) {
	d := filepath.Join(dir, storeSubdir)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, fmt.Errorf("cannot open the profile store: %w", err)
	}
	return &Store{dir: d}, nil
}

// Dir is the directory holding the profiles.
func (s *Store) Dir() string { return s.dir }

// Save stores c under a new ID, sets c.ID and c.Bytes, and returns the
// stored metadata.
func (s *Store) Save(c *Captured) (Meta, error) {
	return s.save(c, c.WriteTo)
}

// SaveRaw stores c like Save, but writes gz, the gzipped bytes c was read
// from (by Read, or by Fetch with KeepRaw), as they are instead of
// gzipping the profile again: for a collector that stores every profile
// it fetches, that compression was a quarter of its CPU. Reading c proved
// gz is a profile within limits, so it is not checked again; what is
// checked, cheaply, is that gz is one gzip stream whose recorded size is
// c's, which catches being handed the wrong bytes. When gz is not that
// (an uncompressed profile, nil, a multi-stream gzip), SaveRaw falls back
// to Save, so callers may pass whatever bytes they received.
func (s *Store) SaveRaw(c *Captured, gz []byte) (Meta, error) {
	if !c.isGzipOf(gz) {
		return s.Save(c)
	}
	return s.save(c, func(w io.Writer) (int64, error) {
		n, err := w.Write(gz)
		return int64(n), err
	})
}

// idAttempts is how many IDs save draws before giving up when each one it
// draws is taken: an ID is the second plus 24 random bits, so two
// captures of one type in the same second clash about once in 16 million
// pairs, and a second clash in a row is for practical purposes never.
const idAttempts = 8

// idRandom fills b with the random part of a new ID. Tests replace it to
// force clashes.
var idRandom = func(b []byte) error {
	_, err := rand.Read(b)
	return err
}

// save stores c, its profile written by writeProfile, under a new ID with
// the same commit protocol whichever way the profile is written. The
// profile is written once, to a temporary file; when the ID drawn is
// already taken (linking fails with EEXIST), it is linked again under a
// fresh one.
func (s *Store) save(c *Captured, writeProfile func(io.Writer) (int64, error)) (Meta, error) {
	if c.Time.IsZero() {
		c.Time = time.Now().UTC()
	}
	var size int64
	meta := c.Meta
	err := atomicfile.WriteVia(s.dir, tempPrefix+"*", 0o600, func(f *os.File) error {
		n, err := writeProfile(f)
		size = n
		return err
	}, func(tmp string) error {
		meta.Bytes = size
		for range idAttempts {
			id, err := newID(c.Time, c.Type)
			if err != nil {
				return err
			}
			meta.ID = id
			if err := s.place(tmp, meta); !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		return fmt.Errorf("%d IDs drawn in a row were all taken", idAttempts)
	})
	if err != nil {
		return Meta{}, fmt.Errorf("cannot save the profile: %w", err)
	}
	c.ID, c.Bytes = meta.ID, meta.Bytes
	return meta, nil
}

// place links the written profile tmp into place under meta.ID, then
// writes the metadata, the commit point. When either name is taken the
// error wraps fs.ErrExist and nothing of this attempt is left behind.
func (s *Store) place(tmp string, meta Meta) error {
	profile := filepath.Join(s.dir, meta.ID+profileExt)
	if err := os.Link(tmp, profile); err != nil {
		return err
	}
	err := s.writeNew(meta.ID+metaExt, func(f *os.File) error {
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		return enc.Encode(meta)
	})
	if err != nil {
		os.Remove(profile)
	}
	return err
}

// writeNew writes name through a synced temporary file, then links it
// into place, failing rather than overwriting an existing name.
func (s *Store) writeNew(name string, write func(*os.File) error) error {
	return atomicfile.WriteVia(s.dir, tempPrefix+"*", 0o600, write, func(tmp string) error {
		return os.Link(tmp, filepath.Join(s.dir, name))
	})
}

func newID(t time.Time, typ string) (string, error) {
	var b [3]byte
	if err := idRandom(b[:]); err != nil {
		return "", err
	}
	if typ == "" {
		typ = "unknown"
	}
	return t.UTC().Format("20060102-150405") + "-" + typ + "-" + hex.EncodeToString(b[:]), nil
}

// Filter selects stored profiles; zero fields match everything.
type Filter struct {
	// Target is a target as capture takes it (127.0.0.1:8080,
	// http://127.0.0.1:8080/) or as the store records it (push://APP);
	// StoredTarget normalises it before it is compared.
	Target  string
	Type    string
	Service string
	Since   time.Time // at or after
	Until   time.Time // before
	// Labels must all match the stored labels (env=staging, job=shop). An
	// empty value matches a profile without that label, as in Prometheus.
	Labels map[string]string
}

// StoredTarget is target as the store records it: for a service, the base
// URL capture stores (what ProfileURL makes of 127.0.0.1:8080,
// http://127.0.0.1:8080/ or http://127.0.0.1:8080/debug/pprof/heap); for
// anything that is no fetchable URL, such as the push://APP under which
// the collector stores pushed profiles, target itself without a trailing
// slash.
func StoredTarget(target string) string {
	if target == "" {
		return ""
	}
	if _, base, _, err := ProfileURL(target, FetchOptions{}); err == nil {
		return base
	}
	return strings.TrimSuffix(target, "/")
}

// matcher returns f's test for one stored profile. The target is
// normalised once, as capture normalises it, so that --target
// 127.0.0.1:8080 selects what was captured from http://127.0.0.1:8080.
func (f Filter) matcher() func(Meta) bool {
	raw, stored := strings.TrimSuffix(f.Target, "/"), StoredTarget(f.Target)
	return func(m Meta) bool {
		target := strings.TrimSuffix(m.Target, "/")
		return (f.Target == "" || target == stored || target == raw) &&
			(f.Type == "" || f.Type == m.Type) &&
			(f.Service == "" || f.Service == m.Service) &&
			(f.Since.IsZero() || !m.Time.Before(f.Since)) &&
			(f.Until.IsZero() || m.Time.Before(f.Until)) &&
			f.matchLabels(m.Labels)
	}
}

func (f Filter) matchLabels(labels map[string]string) bool {
	for k, v := range f.Labels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// List returns the metadata of the stored profiles that match f, oldest
// first.
func (s *Store) List(f Filter) ([]Meta, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read the profile store: %w", err)
	}
	match := f.matcher()
	var out []Meta
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, metaExt) || strings.HasPrefix(name, tempPrefix) {
			continue
		}
		m, err := s.readMeta(strings.TrimSuffix(name, metaExt))
		if err != nil {
			continue // removed under us, or not ours
		}
		if match(m) {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (s *Store) readMeta(id string) (Meta, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, id+metaExt))
	if err != nil {
		return Meta{}, err
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil {
		return Meta{}, err
	}
	m.ID = id
	return m, nil
}

// ErrNotFound is returned (wrapped) when no stored profile has the ID.
var ErrNotFound = errors.New("no such profile in the store")

// Resolve turns an ID or a unique prefix of one into the full ID.
func (s *Store) Resolve(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return "", fmt.Errorf("%q: %w", id, ErrNotFound)
	}
	if _, err := os.Stat(filepath.Join(s.dir, id+metaExt)); err == nil {
		return id, nil
	}
	matches, _ := filepath.Glob(filepath.Join(s.dir, globEscape(id)+"*"+metaExt))
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("%q: %w (leaklab profiles ls lists them)", id, ErrNotFound)
	case 1:
		return strings.TrimSuffix(filepath.Base(matches[0]), metaExt), nil
	}
	return "", fmt.Errorf("%q is ambiguous: %d stored profiles start with it", id, len(matches))
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// Load reads a stored profile by ID (or unique ID prefix) within limits.
func (s *Store) Load(id string, limits Limits) (*Captured, error) {
	full, err := s.Resolve(id)
	if err != nil {
		return nil, err
	}
	m, err := s.readMeta(full)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", full, err)
	}
	f, err := os.Open(filepath.Join(s.dir, full+profileExt))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", full, err)
	}
	defer f.Close()
	c, err := Read(f, limits)
	if err != nil {
		return nil, fmt.Errorf("stored profile %s: %w", full, err)
	}
	c.Meta = m
	return c, nil
}

// Remove deletes a stored profile by ID (or unique ID prefix) and
// returns its metadata.
func (s *Store) Remove(id string) (Meta, error) {
	full, err := s.Resolve(id)
	if err != nil {
		return Meta{}, err
	}
	m, err := s.readMeta(full)
	if err != nil {
		return Meta{}, err
	}
	// Metadata first: once it is gone the entry is invisible, whatever
	// happens to the profile file.
	if err := os.Remove(filepath.Join(s.dir, full+metaExt)); err != nil {
		return Meta{}, err
	}
	if err := os.Remove(filepath.Join(s.dir, full+profileExt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return m, err
	}
	return m, nil
}

// RemoveAll deletes the stored profiles with the given IDs (or unique ID
// prefixes) and returns their metadata, in the order given. Every ID is
// resolved first, so a typo in one removes nothing.
func (s *Store) RemoveAll(ids []string) ([]Meta, error) {
	full := make([]string, len(ids))
	for i, id := range ids {
		var err error
		if full[i], err = s.Resolve(id); err != nil {
			return nil, err
		}
	}
	var removed []Meta
	for _, id := range full {
		m, err := s.Remove(id)
		if err != nil {
			return nil, err
		}
		removed = append(removed, m)
	}
	return removed, nil
}

// PruneOptions select what Prune removes.
type PruneOptions struct {
	Filter
	// OlderThan removes profiles captured more than this long before Now.
	OlderThan time.Duration
	// Keep keeps the newest Keep matching profiles whatever their age.
	Keep int
	// Now is the reference time; time.Now when zero.
	Now time.Time
	// DryRun reports what would be removed without removing it.
	DryRun bool
}

// Prune removes the matching profiles older than OlderThan (all matching
// when OlderThan is zero, except the newest Keep), plus leftovers of
// killed captures, and returns what it removed.
func (s *Store) Prune(opts PruneOptions) ([]Meta, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	metas, err := s.List(opts.Filter)
	if err != nil {
		return nil, err
	}
	if opts.Keep > 0 {
		metas = metas[:max(0, len(metas)-opts.Keep)]
	}
	var removed []Meta
	for _, m := range metas {
		if opts.OlderThan > 0 && now.Sub(m.Time) <= opts.OlderThan {
			continue
		}
		if !opts.DryRun {
			if _, err := s.Remove(m.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return removed, err
			}
		}
		removed = append(removed, m)
	}
	if !opts.DryRun {
		s.removeLeftovers(now)
	}
	return removed, nil
}

// removeLeftovers deletes temporary files and profiles without metadata
// that are old enough for their writer to be gone.
func (s *Store) removeLeftovers(now time.Time) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		orphan := strings.HasSuffix(name, profileExt)
		if orphan {
			if _, err := os.Stat(filepath.Join(s.dir, strings.TrimSuffix(name, profileExt)+metaExt)); err == nil {
				continue
			}
		}
		if !orphan && !strings.HasPrefix(name, tempPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > leftoverAge {
			os.Remove(filepath.Join(s.dir, name))
		}
	}
}
