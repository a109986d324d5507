package retainers_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
)

// TestFinalizersAndCleanupsAreRoots scans a program whose memory is held
// only by a finalizer's closure (6 MiB) and a cleanup's argument (3 MiB),
// built with the Go on this machine and with Go 1.27: both must show as
// chains rooted at the finalizer and the cleanup, holding that memory.
// It fails when the specials are not read (the memory then shows on no
// chain at all) or read at the wrong offsets.
func TestFinalizersAndCleanupsAreRoots(t *testing.T) {
	t.Parallel()
	toolchains := []string{""}
	if !testing.Short() {
		toolchains = append(toolchains, "go1.27.3")
	}
	for _, tc := range toolchains {
		name := tc
		if name == "" {
			name = "local"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var env []string
			if tc != "" {
				env = needToolchain(t, tc)
			}
			bin := filepath.Join(t.TempDir(), "finalizer")
			cmd := exec.Command("go", "build", "-o", bin, "./testdata/finalizer")
			cmd.Env = append(os.Environ(), env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			var ready struct{ Ready bool }
			p := testbin.StartJSON(t, exec.Command(bin), &ready)
			rep := scan(t, p.PID())
			if tc != "" && !strings.HasPrefix(rep.GoVersion, tc) {
				t.Errorf("target Go %s, want %s", rep.GoVersion, tc)
			}
			if rep.Finalizers == 0 || rep.Cleanups == 0 {
				t.Errorf("found %d finalizers and %d cleanups, want at least one of each (specials: %q)", rep.Finalizers, rep.Cleanups, rep.SpecialsOff)
			}
			for _, want := range []struct {
				root, holds string
				size        int64
			}{
				{"finalizer of main.owner", "main.finalizerPayload", 6 << 20},
				// the argument's type is not recorded (a small object
				// has no malloc header): its chain is untyped
				{"cleanup of main.setUp.func2", ".arg", 3 << 20},
			} {
				var held int64
				for _, c := range rep.Chains {
					if c.Chain[0] == want.root && strings.Contains(joined(c.Chain), want.holds) {
						held += c.Bytes
					}
				}
				if held < want.size {
					var roots []string
					for _, c := range rep.Chains[:min(8, len(rep.Chains))] {
						roots = append(roots, joined(c.Chain))
					}
					t.Errorf("chains from %q through %s hold %d bytes, want at least %d; top chains:\n%s", want.root, want.holds, held, want.size, strings.Join(roots, "\n"))
				}
			}
		})
	}
}

// needToolchain returns the environment that builds with toolchain,
// skipping (failing in CI) when the go command cannot get it.
func needToolchain(t *testing.T, toolchain string) []string {
	t.Helper()
	if out, err := exec.Command("env", "GOTOOLCHAIN="+toolchain, "go", "version").CombinedOutput(); err != nil {
		msg := "SKIPPED: cannot get the " + toolchain + " toolchain: " + strings.TrimSpace(string(out))
		if os.Getenv("LEAKLAB_CI") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return []string{"GOTOOLCHAIN=" + toolchain}
}
