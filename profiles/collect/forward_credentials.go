package collect

import (
	"fmt"
	"os"
	"strings"

	"github.com/leaklab/leaklab/internal/opterr"
)

// ForwardPasswordEnv holds the forward user's password: the command line
// is readable by every user of the machine (ps, /proc), the environment
// and a file are not.
const ForwardPasswordEnv = "LEAKLAB_FORWARD_PASSWORD"

// ForwardCredentials are where the forward target's tenant and
// credentials come from, as leaklab collect takes them.
type ForwardCredentials struct {
	Forward      string // the forward target (Options.Forward); the rest needs it
	Tenant       string
	User         string
	PasswordFile string // a file holding the password (its trailing newline is dropped)
	PasswordEnv  string // the value of $LEAKLAB_FORWARD_PASSWORD; empty counts as unset
}

// Auth gathers the forward target's tenant and credentials. The password
// comes from exactly one of PasswordFile and PasswordEnv, and only with a
// User. Refused combinations are *opterr.Error.
func (c ForwardCredentials) Auth() (ForwardAuth, error) {
	auth := ForwardAuth{Tenant: c.Tenant, User: c.User}
	if c.Forward == "" {
		if c.Tenant != "" || c.User != "" || c.PasswordFile != "" {
			return auth, opterr.Combination([]string{"Forward", "Tenant", "User", "PasswordFile"}, "Tenant, User and PasswordFile need Forward")
		}
		return auth, nil
	}
	// A URL with credentials in it is refused by Options.Check.
	inEnv := c.PasswordEnv != ""
	switch {
	case c.PasswordFile != "" && c.User == "":
		return auth, opterr.Combination([]string{"User", "PasswordFile"}, "PasswordFile needs User")
	case c.User == "":
		return auth, nil // a password left in the environment is not used
	case c.PasswordFile != "" && inEnv:
		return auth, opterr.Errorf("PasswordFile", "the password is given twice, in $%s and PasswordFile: keep one", ForwardPasswordEnv)
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return auth, fmt.Errorf("cannot read --forward-password-file: %w", err)
		}
		// Files written by editors and echo end in a newline that is not
		// part of the password.
		auth.Password = strings.TrimRight(string(b), "\r\n")
		if auth.Password == "" {
			return auth, fmt.Errorf("--forward-password-file %s is empty", c.PasswordFile)
		}
	case !inEnv:
		return auth, opterr.Combination([]string{"User", "PasswordFile"}, "User %s needs a password: set $%s or give PasswordFile", c.User, ForwardPasswordEnv)
	default:
		auth.Password = c.PasswordEnv
	}
	return auth, nil
}
