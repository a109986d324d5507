package check

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/leaklab/leaklab/internal/bytesize"
)

// WriteText writes the report as a person reads it.
func WriteText(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "Checked %s: %s, %d rounds of %d requests at %g/s (%d measured, %d errors); totals from %s.\n",
		r.Target, r.Drive, r.Rounds, r.RequestsPerRound, r.Rate, r.Requests, r.Errors, sourceName(r.Source))
	writeMeasurement(w, "heap", r.Heap)
	writeMeasurement(w, "goroutines", r.Goroutines)
	if r.Heap.Exceeded || len(r.HeapSites) > 0 && !r.Passed {
		fmt.Fprintln(w, "\nHeap grew at (first own-code frame; heap profile diff, sampled):")
		if len(r.HeapSites) == 0 {
			fmt.Fprintln(w, "  no site grew enough to show in the sampled heap profile (one sample per 512 KiB allocated by default); more requests (-n) show more")
		}
		for _, s := range r.HeapSites {
			fmt.Fprintf(w, "  +%-10s %8s/request  %s\n", bytesize.Format(s.Delta), bytesize.Format(int64(s.PerRequest)), s.Function)
		}
	}
	if r.Goroutines.Exceeded || len(r.GoroutineSites) > 0 && !r.Passed {
		fmt.Fprintln(w, "\nGoroutines grew at (first own-code frame and wait state):")
		for _, s := range r.GoroutineSites {
			fmt.Fprintf(w, "  +%-6d %6.3f/request  %s [%s]\n", s.Delta, s.PerRequest, s.Function, s.WaitState)
		}
	}
	verdict := "PASSED: nothing grew beyond the limits"
	if !r.Passed {
		verdict = "FAILED: " + strings.Join(r.failures(), "; ")
	}
	_, err := fmt.Fprintf(w, "\n%s\n", verdict)
	return err
}

func sourceName(s string) string {
	if s == "metrics" {
		return "/metrics (go_gc_heap_live_bytes, go_sched_goroutines_goroutines) after a forced GC"
	}
	return "the heap profile's in-use total after a forced GC (sampled) and the goroutine profile's count"
}

func writeMeasurement(w io.Writer, name string, m Measurement) {
	verdict := "within the limit"
	if m.Exceeded {
		verdict = "EXCEEDS the limit"
	}
	series := make([]string, len(m.Series))
	for i, v := range m.Series {
		series[i] = formatUnit(v, m.Unit)
	}
	fmt.Fprintf(w, "  %-10s %s per request (limit %s; floor %s, later half %s): %s\n             %s\n",
		name, formatUnit(m.PerRequest, m.Unit), formatUnit(m.Limit, m.Unit), formatUnit(m.Floor, m.Unit), formatUnit(m.LateHalf, m.Unit), verdict, strings.Join(series, " → "))
}

func formatUnit(v float64, unit string) string {
	if unit == "bytes" {
		if v > -1024 && v < 1024 {
			return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + " B"
		}
		return bytesize.Format(int64(v))
	}
	return fmt.Sprintf("%.3g", v)
}

// failures says which limits were exceeded, and by what.
func (r *Report) failures() []string {
	var out []string
	if r.Heap.Exceeded {
		s := fmt.Sprintf("heap grows %s per request (limit %s)", formatUnit(r.Heap.PerRequest, "bytes"), formatUnit(r.Heap.Limit, "bytes"))
		if len(r.HeapSites) > 0 {
			s += ", most at " + r.HeapSites[0].Function
		}
		out = append(out, s)
	}
	if r.Goroutines.Exceeded {
		s := fmt.Sprintf("goroutines grow %.3g per request (limit %g)", r.Goroutines.PerRequest, r.Goroutines.Limit)
		if len(r.GoroutineSites) > 0 {
			s += fmt.Sprintf(", most at %s [%s]", r.GoroutineSites[0].Function, r.GoroutineSites[0].WaitState)
		}
		out = append(out, s)
	}
	return out
}

// JUnit XML, as CI systems read it: one suite, one test case per limit.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML: a test case for the heap
// limit and one for the goroutine limit, failed when exceeded.
func WriteJUnit(w io.Writer, r *Report) error {
	var text strings.Builder
	if err := WriteText(&text, r); err != nil {
		return err
	}
	suite := junitSuite{Name: "leaklab check " + r.Target, Time: fmt.Sprintf("%.3f", r.Elapsed)}
	for _, c := range []struct {
		name string
		m    Measurement
		msg  string
	}{
		{"heap retained per request: " + r.Drive, r.Heap, fmt.Sprintf("heap grows %s per request (limit %s)", formatUnit(r.Heap.PerRequest, "bytes"), formatUnit(r.Heap.Limit, "bytes"))},
		{"goroutines per request: " + r.Drive, r.Goroutines, fmt.Sprintf("goroutines grow %.3g per request (limit %g)", r.Goroutines.PerRequest, r.Goroutines.Limit)},
	} {
		tc := junitCase{Name: c.name, Classname: "leaklab.check", Time: suite.Time, SystemOut: text.String()}
		if c.m.Exceeded {
			tc.Failure = &junitFailure{Message: c.msg, Type: "leak", Text: text.String()}
			tc.SystemOut = ""
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, tc)
	}
	suite.Tests = len(suite.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{suite}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
