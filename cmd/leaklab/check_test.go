package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leaklab/leaklab/internal/testbin"
)

// A leaky and a fixed service, each its own process on 127.0.0.1:0: the
// leaky one exits 3 naming its culprit, the fixed one 0; both write a
// JUnit report that parses, with a failure only for the leak.
func TestCheckLeakyAndFixedServices(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("drives two services for a few seconds each")
	}
	type junit struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	for _, tc := range []struct {
		fixed    bool
		exit     int
		failures int
	}{
		{false, exitFound, 1},
		{true, exitOK, 0},
	} {
		svc := testbin.StartService(t, "unbounded-cache", tc.fixed, "--quiet")
		xmlPath := filepath.Join(t.TempDir(), "leaks.xml")
		streams, out, errOut := testStreams()
		// The fixed twin's cache holds 128 pages: the warm-up fills it, so
		// that its filling is not read as growth in the measured rounds.
		// The limit, 4 KiB a request, is an eighth of the leaky twin's
		// 32 KiB page; at the default 512 B the fixed twin failed once
		// under the load of a whole run (598 B a request: 149 KB more in
		// its first measured round, flat after: likely more of its 16
		// connections open, each with its buffers, than in the warm-up).
		code := run([]string{"check", svc.URL, "--drive", "GET /product?id={i}", "-n", "100", "--warmup", "200", "--rounds", "3", "--rate", "300",
			"--max-retained-per-request", "4KiB", "--junit", xmlPath, "--output", "json"}, streams)
		if code != tc.exit {
			t.Fatalf("fixed=%v: exit %d, want %d; stderr %q\n%s", tc.fixed, code, tc.exit, errOut, out)
		}
		var rep struct {
			Passed    bool `json:"passed"`
			HeapSites []struct {
				Function string `json:"function"`
			} `json:"heap_sites"`
			Heap struct {
				Exceeded bool `json:"exceeded"`
			} `json:"heap"`
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("no JSON report: %v\n%s", err, out)
		}
		const culprit = "github.com/leaklab/leaklab/leaks.(*pageCache).render"
		if !tc.fixed && (rep.Passed || !rep.Heap.Exceeded || len(rep.HeapSites) == 0 || rep.HeapSites[0].Function != culprit) {
			t.Errorf("leaky: %+v, want failed with %s first", rep, culprit)
		}
		data, err := os.ReadFile(xmlPath)
		if err != nil {
			t.Fatal(err)
		}
		var j junit
		if err := xml.Unmarshal(data, &j); err != nil {
			t.Fatalf("JUnit report does not parse: %v\n%s", err, data)
		}
		if len(j.Suites) != 1 || j.Suites[0].Tests != 2 || j.Suites[0].Failures != tc.failures {
			t.Fatalf("fixed=%v: JUnit %+v, want 1 suite of 2 tests with %d failures", tc.fixed, j, tc.failures)
		}
		if !tc.fixed {
			c := j.Suites[0].Cases[0]
			if c.Failure == nil || !strings.Contains(c.Failure.Message, "heap grows") || !strings.Contains(c.Failure.Text, culprit) {
				t.Errorf("the heap test case %+v: want a failure naming %s", c, culprit)
			}
		}
	}
}

// Bad input gets one line and no verdict: exit 2 for usage, 1 for a
// target that cannot be checked.
func TestCheckBadInput(t *testing.T) {
	t.Parallel()
	svc := testbin.StartService(t, "unbounded-cache", true, "--quiet")
	dead := "http://" + testbin.FreeAddr(t)
	for _, tc := range []struct {
		args []string
		exit int
		line string
	}{
		{[]string{"check", svc.URL}, exitUsage, "--drive is required"},
		{[]string{"check", svc.URL, "--drive", "GET"}, exitUsage, "invalid --drive"},
		{[]string{"check", svc.URL, "--drive", "GET product"}, exitUsage, "does not start with /"},
		{[]string{"check", "notaurl", "--drive", "GET /"}, exitUsage, "invalid URL"},
		{[]string{"check", svc.URL, "--drive", "GET /", "--max-retained-per-request", "lots"}, exitUsage, "--max-retained-per-request"},
		{[]string{"check", svc.URL, "--drive", "GET /", "--rounds", "1"}, exitUsage, "--rounds"},
		{[]string{"check", svc.URL + "/nothing", "--drive", "GET /"}, exitFailure, "404"},
		{[]string{"check", dead, "--drive", "GET /"}, exitFailure, "connection refused"},
	} {
		streams, out, errOut := testStreams()
		if code := run(tc.args, streams); code != tc.exit {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.exit, errOut)
		}
		msg := strings.TrimSpace(errOut.String())
		if !strings.Contains(msg, tc.line) || strings.Contains(msg, "\n") {
			t.Errorf("%v: stderr %q, want one line with %q", tc.args, msg, tc.line)
		}
		if out.Len() != 0 {
			t.Errorf("%v: a verdict was written: %q", tc.args, out)
		}
	}
}
