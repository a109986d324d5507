package watch

import (
	"github.com/google/pprof/profile"
	"github.com/leaklab/leaklab/profiles"
)

// OwnCode decides which frames are the watched service's own code; it is
// the profiles package's rule, shared with diff's leak sites.
type OwnCode = profiles.OwnCode

// OwnCodeFor builds an OwnCode from module paths.
func OwnCodeFor(modules ...string) OwnCode { return profiles.OwnCodeFor(modules...) }

// inferOwn returns own when it names the own code, and otherwise what the
// profiles say (profiles.InferOwnCode), or the default rule with its name.
func inferOwn(own OwnCode, ps ...*profile.Profile) OwnCode {
	if len(own.Prefixes) > 0 {
		return own
	}
	if o, ok := profiles.InferOwnCode(ps...); ok {
		return o
	}
	return OwnCode{Source: profiles.OwnFromDefault}
}
