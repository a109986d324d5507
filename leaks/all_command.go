package leaks

import (
	"fmt"
	"os"

	"github.com/leaklab/leaklab/internal/opterr"
)

// AllCommandOptions are 'leaklab run --all' as the command takes it: the
// twins as one word (which Options turns into AllOptions.Variants), Fixed
// as a short form of Variants "fixed", and the single-service options (an
// address, Public), which are refused. Exe is found by Options.
type AllCommandOptions struct {
	AllOptions
	Variants    string // leaky, fixed or both
	VariantsSet bool   // Variants was given, not defaulted: it must then agree with Fixed
	Fixed       bool
	AddrSet     bool // an address was given: one service's, refused with all of them
	Public      bool // refused: the services stay on 127.0.0.1
}

// Options checks c (see CheckAllOptions) and turns it into AllOptions,
// with this binary as the services' Exe. Refused options are
// *opterr.Error; nothing is started.
func (c AllCommandOptions) Options() (AllOptions, error) {
	if c.AddrSet {
		return AllOptions{}, opterr.Combination([]string{"Addr", "All", "BasePort"}, "Addr names one service's address; with All use BasePort")
	}
	if c.Public {
		return AllOptions{}, opterr.Combination([]string{"Public", "All"}, "Public is not available with All: the services stay on 127.0.0.1")
	}
	choice := c.Variants
	if c.Fixed {
		if c.VariantsSet && choice != "fixed" {
			return AllOptions{}, opterr.Combination([]string{"Fixed", "Variants"}, "Fixed and Variants %s disagree; use one of them", choice)
		}
		choice = "fixed"
	}
	var variants []Variant
	switch choice {
	case "leaky":
		variants = []Variant{Leaky}
	case "fixed":
		variants = []Variant{Fixed}
	case "both":
		variants = []Variant{Leaky, Fixed}
	default:
		return AllOptions{}, opterr.Errorf("Variants", "Variants must be leaky, fixed or both, not %q", choice)
	}
	opts := c.AllOptions
	opts.Variants = variants
	if err := CheckAllOptions(opts); err != nil {
		return AllOptions{}, err
	}
	exe, err := os.Executable()
	if err != nil {
		return AllOptions{}, fmt.Errorf("finding the leaklab binary to start the services with: %w", err)
	}
	opts.Exe = exe
	return opts, nil
}
