package dashboards

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/leaklab/leaklab/internal/atomicfile"
	"github.com/leaklab/leaklab/internal/filesd"
	"github.com/leaklab/leaklab/internal/opterr"
)

// StackDir is where the tree lives in this repository, relative to the
// package directory; Export writes the same tree anywhere.
const StackDir = "stack"

// DashboardsDir is where the dashboards' JSON sits inside the tree.
const DashboardsDir = "grafana/dashboards"

// The hand-written part of the tree. The dashboards' JSON is generated, so
// it is not embedded: Export renders it from the Go code.
//
//go:embed stack/compose.yaml stack/prometheus/prometheus.yml stack/prometheus/rules stack/prometheus/targets/README.md stack/grafana/provisioning
var static embed.FS

// File is one file of the provisioning tree.
type File struct {
	Path string // slash-separated, relative to the tree's root
	Data []byte
}

// tree returns every file of the provisioning tree, sorted by path: the
// Grafana provisioning, the generated dashboards, the Prometheus config and
// the compose file.
func tree() ([]File, error) {
	var files []File
	err := fs.WalkDir(static, StackDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		rel := p[len(StackDir)+1:]
		files = append(files, File{Path: rel, Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, d := range All() {
		data, err := d.JSON()
		if err != nil {
			return nil, err
		}
		files = append(files, File{Path: path.Join(DashboardsDir, d.File), Data: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// ExportOptions configure Export.
type ExportOptions struct {
	// Force writes into a directory that already has files in it,
	// replacing the tree's own files and leaving others alone.
	Force bool
}

// NotEmptyError says Export refused to write into a directory with files;
// Export returns it wrapped in an *opterr.Error for ExportOptions.Force.
type NotEmptyError struct{ Dir string }

func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("%s is not empty (choose a new directory, or Force to overwrite leaklab's files in it)", e.Dir)
}

// Exported is what Export wrote, as 'leaklab dashboards export' reports it.
type Exported struct {
	Dir   string   `json:"dir"`
	Files []string `json:"files"`
}

// WriteText lists the files and says how to start the services they
// expect.
func (e Exported) WriteText(w io.Writer) error {
	for _, p := range e.Files {
		fmt.Fprintln(w, p)
	}
	_, err := fmt.Fprintf(w, "\nwrote %d files; start the services with:\n  leaklab run --all --targets-file %s\n", len(e.Files), e.Dir+"/prometheus/targets/leaklab.json")
	return err
}

// Export writes the provisioning tree into dir and returns the paths it
// wrote. A dir that does not exist yet is filled under a temporary name
// and renamed into place, so an interrupted export leaves nothing behind;
// into an existing dir each file is written to a temporary name and renamed.
func Export(ctx context.Context, dir string, opts ExportOptions) ([]string, error) {
	files, err := tree()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return exportFresh(ctx, dir, files)
	case err != nil:
		return nil, err
	case len(entries) > 0 && !opts.Force:
		return nil, &opterr.Error{Option: "Force", Err: &NotEmptyError{Dir: dir}}
	}
	return writeFiles(ctx, dir, dir, files)
}

func exportFresh(ctx context.Context, dir string, files []File) ([]string, error) {
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, err
	}
	written, err := writeFiles(ctx, tmp, dir, files)
	if err == nil {
		// MkdirTemp makes the directory 0700; the tree is meant to be read
		// by containers running as other users.
		err = os.Chmod(tmp, 0o755)
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return written, nil
}

// writeFiles writes files under root and reports their paths under shown.
func writeFiles(ctx context.Context, root, shown string, files []File) ([]string, error) {
	written := make([]string, 0, len(files))
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteBytes(p, f.Data); err != nil {
			return nil, err
		}
		written = append(written, filepath.Join(shown, filepath.FromSlash(f.Path)))
	}
	return written, nil
}

// Target is one sample service for Prometheus to scrape.
type Target struct {
	Addr    string // host:port
	Service string
	Variant string
}

// targetsJSON renders targets as a Prometheus file_sd file: one group per
// service, labelled with service and variant.
func targetsJSON(targets []Target) ([]byte, error) {
	return filesd.Marshal(targetGroups(targets))
}

// WriteTargetsFile writes targets to path as a file_sd file, atomically so
// that Prometheus, which watches the file, never reads half of it.
func WriteTargetsFile(path string, targets []Target) error {
	if err := filesd.WriteFile(path, targetGroups(targets)); err != nil {
		return fmt.Errorf("writing the targets file: %w", err)
	}
	return nil
}

func targetGroups(targets []Target) []filesd.Group {
	groups := make([]filesd.Group, 0, len(targets))
	for _, t := range targets {
		groups = append(groups, filesd.Group{
			Targets: []string{t.Addr},
			Labels:  map[string]string{"service": t.Service, "variant": t.Variant},
		})
	}
	return groups
}
