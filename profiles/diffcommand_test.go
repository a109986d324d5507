package profiles

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
)

func TestDiffCommandOptions(t *testing.T) {
	dir := t.TempDir()
	opened := 0
	c := DiffCommandOptions{
		DiffOptions: DiffOptions{By: ByFunction, Top: 3},
		Out:         filepath.Join(dir, "diff.pb.gz"),
		OpenStore:   func() (*Store, error) { opened++; return Open(dir) },
	}
	base, cur := filepath.Join("testdata", "heap-base.pb.gz"), filepath.Join("testdata", "heap-current.pb.gz")
	rep, dp, err := c.Run(context.Background(), base, cur)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) == 0 || len(rep.Rows) > 3 || dp == nil || opened != 1 {
		t.Fatalf("%d rows, diff profile %v, store opened %d times", len(rep.Rows), dp != nil, opened)
	}
	// What Out names holds a profile.
	written, err := ReadFile(c.Out, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if written.Type == "" {
		t.Errorf("-o wrote a profile of no type")
	}

	// Without Out or WantProfile there is no diff profile to build.
	c.Out = ""
	if _, dp, err := c.Run(context.Background(), base, cur); err != nil || dp != nil {
		t.Errorf("diff profile %v, err %v; want none", dp, err)
	}

	opened = 0
	for _, tc := range []struct {
		opts DiffOptions
		want string
	}{
		{DiffOptions{By: "module"}, `By "module": want function, line or stack`},
		{DiffOptions{By: ""}, `By "": want function, line or stack`},
		{DiffOptions{By: ByStack, Top: -1}, "Top must not be negative"},
	} {
		c.DiffOptions = tc.opts
		if _, _, err := c.Run(context.Background(), base, cur); !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an option error containing %q", tc.opts, err, tc.want)
		}
	}
	if opened != 0 {
		t.Errorf("refused options opened the store %d times", opened)
	}
}
