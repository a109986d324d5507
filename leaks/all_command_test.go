package leaks

import (
	"slices"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/opterr"
)

func TestAllCommandOptions(t *testing.T) {
	ok := AllCommandOptions{Variants: "leaky", AllOptions: AllOptions{BasePort: DefaultBasePort, MaxLeak: "64MiB"}}
	for _, tc := range []struct {
		c    AllCommandOptions
		want []Variant
	}{
		{ok, []Variant{Leaky}},
		{AllCommandOptions{Variants: "both", AllOptions: AllOptions{BasePort: DefaultBasePort, MaxLeak: "1MiB"}}, []Variant{Leaky, Fixed}},
		{AllCommandOptions{Variants: "leaky", Fixed: true, AllOptions: AllOptions{BasePort: DefaultBasePort, MaxLeak: "1MiB"}}, []Variant{Fixed}},
		{AllCommandOptions{Variants: "fixed", VariantsSet: true, Fixed: true, AllOptions: AllOptions{BasePort: DefaultBasePort, MaxLeak: "1MiB"}}, []Variant{Fixed}},
	} {
		got, err := tc.c.Options()
		if err != nil || !slices.Equal(got.Variants, tc.want) || got.Exe == "" || got.BasePort != DefaultBasePort {
			t.Errorf("%+v: %+v, %v; want variants %v", tc.c, got, err, tc.want)
		}
	}
	with := func(change func(c *AllCommandOptions)) AllCommandOptions {
		c := ok
		change(&c)
		return c
	}
	for _, tc := range []struct {
		c    AllCommandOptions
		want string
	}{
		{with(func(c *AllCommandOptions) { c.AddrSet = true }), "with All use BasePort"},
		{with(func(c *AllCommandOptions) { c.Public = true }), "Public is not available with All"},
		{with(func(c *AllCommandOptions) { c.Fixed, c.Variants, c.VariantsSet = true, "both", true }), "Fixed and Variants both disagree"},
		{with(func(c *AllCommandOptions) { c.Variants = "twin" }), `Variants must be leaky, fixed or both, not "twin"`},
		{with(func(c *AllCommandOptions) { c.BasePort = 0 }), "must lie in 1-65535"},
		{with(func(c *AllCommandOptions) { c.MaxLeak = "0" }), "MaxLeak must be more than zero"},
	} {
		if _, err := tc.c.Options(); !opterr.Is(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an option error containing %q", tc.c, err, tc.want)
		}
	}
}
