package leaks

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/leaklab/leaklab/internal/opterr"
)

// Entry is a service as the catalog shows it to a user (the JSON of
// 'leaklab services'): the culprit and explanation are withheld unless
// asked for, so the catalog can be browsed as exercises.
type Entry struct {
	Name        string     `json:"name"`
	Kind        Kind       `json:"kind"`
	Summary     string     `json:"summary"`
	Hints       []string   `json:"hints"`
	Profile     string     `json:"profile"`
	Endpoints   []Endpoint `json:"endpoints"`
	Symptom     Symptom    `json:"symptom"`
	Culprit     string     `json:"culprit,omitempty"`
	Retainer    string     `json:"retainer,omitempty"`
	Explanation string     `json:"explanation,omitempty"`
}

// Entry returns the service's entry, with the culprit and explanation
// only when spoilers.
func (s *Service) Entry(spoilers bool) Entry {
	e := Entry{Name: s.Name, Kind: s.Kind, Summary: s.Summary, Hints: s.Hints, Profile: s.Profile, Endpoints: s.Endpoints, Symptom: s.Symptom}
	if spoilers {
		e.Culprit, e.Retainer, e.Explanation = s.Culprit, s.Retainer, s.Explanation
	}
	return e
}

// Entries is a list of services.
type Entries []Entry

// CatalogEntries are the entries of every service of kind (all when
// kind is ""), with culprits only with spoilers. A kind no service has is
// an *opterr.Error.
func CatalogEntries(kind string, spoilers bool) (Entries, error) {
	var entries Entries
	for _, s := range All() {
		if kind == "" || string(s.Kind) == kind {
			entries = append(entries, s.Entry(spoilers))
		}
	}
	if len(entries) == 0 {
		return nil, opterr.Errorf("Kind", "no service of kind %q (kinds: heap, goroutine, cpu, lock, alloc)", kind)
	}
	return entries, nil
}

// WriteText writes the list as a table: each service's symptom, or its
// culprit when the entries carry them.
func (es Entries) WriteText(w io.Writer) error {
	spoilers := len(es) > 0 && es[0].Culprit != ""
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if spoilers {
		fmt.Fprintln(tw, "NAME\tKIND\tCULPRIT")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, e.Kind, strings.TrimPrefix(e.Culprit, "github.com/leaklab/leaklab/"))
		}
	} else {
		fmt.Fprintln(tw, "NAME\tKIND\tSYMPTOM")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, e.Kind, firstSentence(e.Summary))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d services. 'leaklab services NAME' for hints and endpoints; 'leaklab run NAME' to start one.\n", len(es))
	return err
}

// WriteText writes everything a user needs to start on the service.
func (e Entry) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s (%s)\n\n  %s\n\nendpoints:\n", e.Name, e.Kind, e.Summary)
	for _, ep := range e.Endpoints {
		fmt.Fprintf(w, "  %-5s %-40s %s\n", ep.Method, ep.Path, ep.Doc)
	}
	fmt.Fprintf(w, "\nwhere it shows: %s in /metrics", e.Symptom.Metric)
	if e.Symptom.PerRequest {
		fmt.Fprint(w, " (per request)")
	}
	fmt.Fprintf(w, "; the %s profile reveals the cause\n\nhints:\n", e.Profile)
	for i, h := range e.Hints {
		fmt.Fprintf(w, "  %d. %s\n", i+1, h)
	}
	if e.Culprit != "" {
		fmt.Fprintf(w, "\nculprit: %s\n", e.Culprit)
		if e.Retainer != "" {
			fmt.Fprintf(w, "retainer: %s (what 'leaklab retainers' shows holding the leak)\n", e.Retainer)
		}
		fmt.Fprintf(w, "\n  %s\n", e.Explanation)
	}
	_, err := fmt.Fprintf(w, "\nrun it: leaklab run %s   (fixed twin: --fixed)\n", e.Name)
	return err
}

// firstSentence shortens a summary for the table.
func firstSentence(s string) string {
	for _, sep := range []string{"; ", ". ", ", and "} {
		if i := strings.Index(s, sep); i > 0 && i < 110 {
			return s[:i]
		}
	}
	if len(s) > 110 {
		cut := strings.LastIndexByte(s[:107], ' ')
		if cut < 60 {
			cut = 107
		}
		return strings.TrimRight(s[:cut], " ,;:") + "..."
	}
	return strings.TrimSuffix(s, ".")
}
