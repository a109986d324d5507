// Package atomicfile writes files so that a reader (Prometheus watching a
// targets file, a browser opening a report) or a crash never sees half of
// one: the content goes to a synced temporary file in the same directory,
// which is then renamed (or linked) into place. Every file leaklab writes
// goes through it: stored profiles, reports, exported dashboards.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Mode is the permission of the files Write creates.
const Mode os.FileMode = 0o644

// Write writes path with what write produces, replacing any file there.
// On failure path is untouched and no temporary file is left behind.
func Write(path string, write func(io.Writer) error) error {
	return WriteVia(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*", Mode,
		func(f *os.File) error { return write(f) },
		func(tmp string) error { return os.Rename(tmp, path) })
}

// WriteBytes is Write with the content at hand.
func WriteBytes(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteVia writes a temporary file in dir (named by pattern, as
// os.CreateTemp), syncs it, sets its mode, and hands it to place, which
// moves it where it belongs (a rename, or a link that must not overwrite).
// The temporary file is gone afterwards whatever happens, so a failure or
// a kill never leaves half a file under the final name.
func WriteVia(dir, pattern string, mode os.FileMode, write func(*os.File) error, place func(tmp string) error) error {
	f, err := os.CreateTemp(dir, pattern)
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
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return place(tmp)
}
