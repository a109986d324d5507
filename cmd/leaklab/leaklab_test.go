package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
)

// How the command tests run leaklab: most in process, through runIn with a
// home of their own, so they run in parallel; the real binary only where
// the process itself is the point (signals, its environment, its working
// directory, several processes at once).

func testStreams() (*ioStreams, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	return &ioStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut}, out, errOut
}

// leaklabIn runs leaklab in process with the leaklab home at home and
// returns stdout, stderr and the exit code.
func leaklabIn(t *testing.T, home string, args ...string) (string, string, int) {
	t.Helper()
	return leaklabEnv(t, home, nil, args...)
}

// leaklabEnv is leaklabIn with env as the whole environment the command
// sees (nil: the test's).
func leaklabEnv(t *testing.T, home string, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	// Commands may log from their goroutines (a service's logger, say).
	var out, errOut testbin.SyncBuffer
	f := &factory{streams: &ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, home: home}
	if env != nil {
		f.env = func(key string) string { return env[key] }
	}
	code := runIn(t.Context(), f, args)
	return out.String(), errOut.String(), code
}

func mustLeaklab(t *testing.T, home string, args ...string) string {
	t.Helper()
	out, errOut, code := leaklabIn(t, home, args...)
	if code != 0 {
		t.Fatalf("leaklab %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// leaklabBinary runs the real binary in dir (the test's own when "") with
// env added to the test's environment, and returns stdout, stderr and the
// exit code.
func leaklabBinary(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testbin.Build(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	}
	t.Fatal(err)
	return "", "", -1
}

func drive(t *testing.T, base, pathFmt string, n int) {
	t.Helper()
	for i := range n {
		resp, err := http.Get(base + fmt.Sprintf(pathFmt, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// storeFiles lists every file in the store, hidden ones included.
func storeFiles(t *testing.T, home string) []string {
	t.Helper()
	dir := filepath.Join(home, "profiles")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil // no capture yet
	}
	return testbin.DirNames(t, dir)
}
