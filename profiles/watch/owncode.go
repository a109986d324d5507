package watch

import "github.com/leaklab/leaklab/profiles"

// OwnCode decides which frames are the watched service's own code; it is
// the profiles package's rule, shared with diff's leak sites.
type OwnCode = profiles.OwnCode

// OwnCodeFor builds an OwnCode from module paths.
func OwnCodeFor(modules ...string) OwnCode { return profiles.OwnCodeFor(modules...) }
