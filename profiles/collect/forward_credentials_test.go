package collect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
)

// The password comes from one place, only with a user; a password file's
// trailing newline is not part of it; every refused combination is an
// option error, a file that cannot be read is not.
func TestForwardCredentialsAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const fwd = "http://127.0.0.1:4040"
	for _, tc := range []struct {
		name     string
		c        ForwardCredentials
		want     ForwardAuth
		optErr   string // an *opterr.Error containing this
		otherErr string // another error containing this
	}{
		{name: "no forward", c: ForwardCredentials{}, want: ForwardAuth{}},
		{name: "user without forward", c: ForwardCredentials{User: "u"}, optErr: "need Forward"},
		{name: "no user", c: ForwardCredentials{Forward: fwd, Tenant: "t", PasswordEnv: "unused"}, want: ForwardAuth{Tenant: "t"}},
		{name: "file without user", c: ForwardCredentials{Forward: fwd, PasswordFile: passFile}, optErr: "PasswordFile needs User"},
		{name: "password twice", c: ForwardCredentials{Forward: fwd, User: "u", PasswordFile: passFile, PasswordEnv: "x"}, optErr: "given twice"},
		{name: "no password", c: ForwardCredentials{Forward: fwd, User: "u"}, optErr: "needs a password"},
		{name: "from env", c: ForwardCredentials{Forward: fwd, User: "u", PasswordEnv: "envpass"}, want: ForwardAuth{User: "u", Password: "envpass"}},
		{name: "from file", c: ForwardCredentials{Forward: fwd, User: "u", PasswordFile: passFile}, want: ForwardAuth{User: "u", Password: "s3cret"}},
		{name: "empty file", c: ForwardCredentials{Forward: fwd, User: "u", PasswordFile: emptyFile}, otherErr: "is empty"},
		{name: "missing file", c: ForwardCredentials{Forward: fwd, User: "u", PasswordFile: filepath.Join(dir, "nope")}, otherErr: "cannot read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.Auth()
			switch {
			case tc.optErr != "":
				if !opterr.Is(err) || !strings.Contains(err.Error(), tc.optErr) {
					t.Fatalf("err = %v, want an option error containing %q", err, tc.optErr)
				}
			case tc.otherErr != "":
				if err == nil || opterr.Is(err) || !strings.Contains(err.Error(), tc.otherErr) {
					t.Fatalf("err = %v, want a non-option error containing %q", err, tc.otherErr)
				}
			case err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
