package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command a user can reach has examples in its help.
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRootCmd(&factory{streams: &ioStreams{}})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c.Runnable() && strings.TrimSpace(c.Example) == "" {
			t.Errorf("'%s' has no examples in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		code    int
		errLine string // expected in stderr
	}{
		{args: []string{"version"}, code: exitOK},
		{args: []string{"services"}, code: exitOK},
		{args: []string{"bogus"}, code: exitUsage, errLine: `unknown command "bogus"`},
		{args: []string{"services", "--bogus"}, code: exitUsage, errLine: "unknown flag: --bogus"},
		{args: []string{"services", "--output", "yaml"}, code: exitUsage, errLine: "must be text or json"},
		{args: []string{"services", "no-such-service"}, code: exitUsage, errLine: `unknown service "no-such-service"`},
		{args: []string{"services", "--kind", "disk"}, code: exitUsage, errLine: `no service of kind "disk"`},
		{args: []string{"run"}, code: exitUsage, errLine: "run takes one service name"},
		{args: []string{"run", "no-such-service"}, code: exitUsage, errLine: `unknown service "no-such-service"`},
		{args: []string{"run", "unbounded-cache", "--max-leak", "lots"}, code: exitUsage, errLine: "max-leak: "},
		{args: []string{"run", "unbounded-cache", "--addr", "0.0.0.0:0"}, code: exitUsage, errLine: "not a loopback address"},
		// Refused by package leaks with an option error: a usage error.
		{args: []string{"run", "unbounded-cache", "--pyroscope", "ftp://x"}, code: exitUsage, errLine: `invalid pyroscope URL "ftp://x"`},
		{args: []string{"run", "--all", "--pyroscope", "ftp://x"}, code: exitUsage, errLine: `invalid pyroscope URL "ftp://x"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			streams, _, errOut := testStreams()
			if got := run(tc.args, streams); got != tc.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", got, tc.code, errOut)
			}
			if tc.errLine == "" {
				if errOut.Len() > 0 {
					t.Errorf("unexpected stderr: %s", errOut)
				}
				return
			}
			if !strings.Contains(errOut.String(), tc.errLine) {
				t.Errorf("stderr %q does not mention %q", errOut, tc.errLine)
			}
			if n := strings.Count(strings.TrimSpace(errOut.String()), "\n"); n != 0 {
				t.Errorf("want one line of error, got:\n%s", errOut)
			}
		})
	}
}

func TestVersionJSON(t *testing.T) {
	streams, out, _ := testStreams()
	if code := run([]string{"version", "--output", "json"}, streams); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v versionInfo
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go") {
		t.Fatalf("version JSON %q: %+v, %v", out, v, err)
	}
}
