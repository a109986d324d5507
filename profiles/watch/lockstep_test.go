package watch

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// goroutineSuspect builds a goroutine suspect whose count grows by the
// given increments, one snapshot every 5 s.
func goroutineSuspect(fn string, own bool, start float64, steps []float64) Suspect {
	pts := []Point{{T: 0, V: start}}
	for i, d := range steps {
		pts = append(pts, Point{T: float64(5 * (i + 1)), V: pts[len(pts)-1].V + d})
	}
	return Suspect{Kind: KindGoroutine, Function: fn, OwnCode: own, Confidence: Likely, Unit: "goroutines", Points: pts}
}

// irregular draws increments of a load that varies from one interval to
// the next: what a real service under real traffic leaks per interval.
func irregular(r *rand.Rand, n int, mean float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(r.IntN(int(2*mean) + 1))
	}
	return out
}

func scaled(steps []float64, k float64) []float64 {
	out := make([]float64, len(steps))
	for i, s := range steps {
		out[i] = k * s
	}
	return out
}

func TestGroupsGoroutineSitesThatGrowInLockstep(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	unit := irregular(r, 12, 10) // watch streams opened per 5 s
	// one leaked watch stream holds a library goroutine, a handler, a send
	// loop (own code) and two goroutines of a gateway's receive loop; a
	// unit half set up at a snapshot shifts one site by one
	half := append([]float64(nil), unit...)
	half[4]++
	half[5]--
	suspects := []Suspect{
		goroutineSuspect("github.com/soheilhy/cmux.(*bufferedReader).Read", false, 3, unit),
		goroutineSuspect("example.com/srv.(*watchServer).Watch", true, 1, half),
		goroutineSuspect("example.com/srv.(*serverWatchStream).sendLoop", true, 1, unit),
		goroutineSuspect("example.com/srv/gw.RecvLoop", true, 0, scaled(unit, 2)),
		{Kind: KindHeap, Function: "example.com/srv.cache", Confidence: Likely, Unit: "bytes", Points: []Point{{0, 1}, {5, 2}}},
		// a leak of its own, as fast on average, but not step by step
		goroutineSuspect("example.com/srv.poll", true, 0, irregular(r, 12, 10)),
		// and one at one and a half times the rate
		goroutineSuspect("example.com/srv.retry", true, 0, scaled(unit, 1.5)),
	}
	got := groupLockstep(suspects)
	if len(got) != len(suspects) {
		t.Fatalf("grouping lost or added suspects: %d → %d", len(suspects), len(got))
	}
	var order []string
	same := map[string]string{}
	for _, s := range got {
		order = append(order, s.Function)
		same[s.Function] = s.SameLeakAs
	}
	lead := "example.com/srv.(*watchServer).Watch" // the first own-code member
	if order[0] != lead {
		t.Errorf("group led by %s, want the first own-code member %s (order %v)", order[0], lead, order)
	}
	for _, fn := range []string{"github.com/soheilhy/cmux.(*bufferedReader).Read", "example.com/srv.(*serverWatchStream).sendLoop", "example.com/srv/gw.RecvLoop"} {
		if same[fn] != lead {
			t.Errorf("%s: same_leak_as %q, want %q", fn, same[fn], lead)
		}
	}
	for _, fn := range []string{lead, "example.com/srv.cache", "example.com/srv.poll", "example.com/srv.retry"} {
		if same[fn] != "" {
			t.Errorf("%s: same_leak_as %q, want none", fn, same[fn])
		}
	}
	// the group stays together, right after its lead
	for i := 1; i <= 3; i++ {
		if same[order[i]] != lead {
			t.Errorf("position %d is %s, want a member of the group (order %v)", i, order[i], order)
		}
	}

	var text strings.Builder
	if err := WriteText(&text, &Report{Suspects: got}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"3 more goroutine sites below grow in lockstep with it",
		"grows in lockstep with " + lead + " above",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

// Independent leaks of the same average rate under a varying load are
// not grouped: over many draws, how often two are taken for one leak.
func TestLockstepRarelyGroupsIndependentLeaks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	grouped := 0
	const draws = 1000
	for range draws {
		a := goroutineSuspect("a", true, 0, irregular(r, 12, 10))
		b := goroutineSuspect("b", true, 0, irregular(r, 12, 10))
		if inLockstep(a, b) {
			grouped++
		}
	}
	// Measured with this seed and these sizes: 0 of 1,000. A rule that
	// compared only the totals (within the same slack) groups 212.
	if grouped > draws/100 {
		t.Errorf("%d of %d pairs of independent leaks were grouped as one", grouped, draws)
	}
}

// unclosed-body's pinned client connections (named after the own code
// that sends the requests, though no own code is on their stacks) grow in
// lockstep with the server's connections that answer them, in the same
// process: the client connections, which name the culprit, lead.
func TestLockstepLedByNamedClientConnections(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	unit := irregular(r, 12, 100)
	server := goroutineSuspect("net/http.(*conn).serve", false, 24, unit)
	client := goroutineSuspect("example.com/shop.(*stockService).fetchStock", false, 0, unit)
	client.Connections = "net/http.(*persistConn).readLoop"
	got := groupLockstep([]Suspect{server, client})
	if got[0].Function != client.Function || got[1].SameLeakAs != client.Function {
		t.Errorf("group %s (same as %q), %s (same as %q); want the client connections first", got[0].Function, got[0].SameLeakAs, got[1].Function, got[1].SameLeakAs)
	}
}
