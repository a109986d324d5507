package profiles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/pprof/profile"
)

// RefOptions say how LoadRef finds a profile.
type RefOptions struct {
	// Store is searched for IDs; IDs are refused when nil.
	Store *Store
	// Fetch is used for URLs.
	Fetch  FetchOptions
	Limits Limits
}

// LoadRef returns the profile a command-line argument names: a URL
// (captured now, not stored), a file, or a store ID or unique prefix.
func LoadRef(ctx context.Context, ref string, opts RefOptions) (*Captured, error) {
	if strings.Contains(ref, "://") {
		fo := opts.Fetch
		if fo.Limits == (Limits{}) {
			fo.Limits = opts.Limits
		}
		return Fetch(ctx, ref, fo)
	}
	if _, err := os.Stat(ref); err == nil {
		return ReadFile(ref, opts.Limits)
	}
	if opts.Store == nil {
		return nil, fmt.Errorf("%s: no such file", ref)
	}
	c, err := opts.Store.Load(ref, opts.Limits)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%s: no such file, URL or stored profile (leaklab profiles ls lists stored ones)", ref)
	}
	return c, err
}

// WriteFile writes c gzipped to path atomically: through a temporary file
// in the same directory, renamed into place, so a killed process never
// leaves half a profile at path.
func WriteFile(path string, c *Captured) error {
	return writeFileAtomic(path, func(w io.Writer) error {
		_, err := c.WriteTo(w)
		return err
	})
}

// WriteProfile writes p gzipped to path atomically, like WriteFile.
func WriteProfile(path string, p *profile.Profile) error {
	return writeFileAtomic(path, p.Write)
}

func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, path)
}
