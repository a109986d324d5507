package profiles

import (
	"bytes"
	"testing"

	"github.com/google/pprof/profile"
)

// goroutineProfile builds a goroutine profile (in pprof's wire format, as
// the runtime writes it) of n goroutines parked on stack, leaf first.
func goroutineProfile(t *testing.T, n int64, stack ...string) *Captured {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "goroutine", Unit: "count"}},
		PeriodType: &profile.ValueType{Type: "goroutine", Unit: "count"},
		Period:     1,
	}
	s := &profile.Sample{Value: []int64{n}}
	for i, name := range stack {
		fn := &profile.Function{ID: uint64(i + 1), Name: name, SystemName: name, Filename: "x.go"}
		loc := &profile.Location{ID: uint64(i + 1), Address: uint64(0x1000 + i), Line: []profile.Line{{Function: fn, Line: int64(10 + i)}}}
		p.Function = append(p.Function, fn)
		p.Location = append(p.Location, loc)
		s.Location = append(s.Location, loc)
	}
	p.Sample = []*profile.Sample{s}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	c, err := Read(&buf, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A goroutine parked inside a library (a connection pool) is named after
// the service's function that called the library, by default and with
// --own; a prefix that names nothing falls back to the first frame below
// the runtime. Watch's suspects use the same rule (OwnCode).
func TestLeakSiteSkipsLibraries(t *testing.T) {
	stack := []string{
		"runtime.gopark", "runtime.selectgo",
		"github.com/jackc/pgx/v5/pgxpool.(*Pool).Acquire",
		"github.com/acme/orders/store.(*Repo).Get",
		"github.com/acme/orders.(*Server).handle",
		"net/http.HandlerFunc.ServeHTTP", "net/http.(*conn).serve", "runtime.goexit",
	}
	base, cur := goroutineProfile(t, 3, stack...), goroutineProfile(t, 40, stack...)
	for _, tc := range []struct {
		name string
		own  OwnCode
		want string
	}{
		{"default", OwnCode{}, "github.com/acme/orders/store.(*Repo).Get"},
		{"module", OwnCodeFor("github.com/acme/orders"), "github.com/acme/orders/store.(*Repo).Get"},
		{"top package only", OwnCode{Prefixes: []string{"github.com/acme/orders."}}, "github.com/acme/orders.(*Server).handle"},
		{"nothing matches", OwnCodeFor("example.com/other"), "github.com/jackc/pgx/v5/pgxpool.(*Pool).Acquire"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Diff(base, cur, DiffOptions{Own: tc.own})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.LeakSites) != 1 || rep.LeakSites[0].Function != tc.want || rep.LeakSites[0].WaitState != "select" || rep.LeakSites[0].Delta != 37 {
				t.Errorf("leak sites %+v, want one: %s [select] +37", rep.LeakSites, tc.want)
			}
			if (rep.OwnCode != nil) != (len(tc.own.Prefixes) > 0) {
				t.Errorf("report's own code %+v, given %+v", rep.OwnCode, tc.own)
			}
		})
	}
}

func TestOwnCodeMatch(t *testing.T) {
	def, mod := OwnCode{}, OwnCodeFor("github.com/acme/orders/")
	for _, tc := range []struct {
		fn       string
		def, mod bool
	}{
		{"main.main", true, true},
		{"net/http.(*conn).serve", false, false},
		{"github.com/acme/orders.(*Server).handle", true, true},
		{"github.com/acme/orders/store.Get", true, true},
		{"github.com/acme/ordersextra.F", true, false},
		{"github.com/prometheus/client_golang/prometheus.(*Registry).Gather", false, false},
		{"golang.org/x/sync/errgroup.(*Group).Wait", false, false},
		{"example.com/lib.F", true, false},
	} {
		if got := def.Match(tc.fn); got != tc.def {
			t.Errorf("default Match(%q) = %v", tc.fn, got)
		}
		if got := mod.Match(tc.fn); got != tc.mod {
			t.Errorf("module Match(%q) = %v", tc.fn, got)
		}
	}
	if len(mod.Modules) != 1 || mod.Modules[0] != "github.com/acme/orders" {
		t.Errorf("modules %v", mod.Modules)
	}
}
