package profiles

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// What the store's commands report: a listing of stored profiles, one
// profile shown. As JSON each is an output contract.

// Listed is a stored profile in a listing: {id, target, type, time} (time
// in RFC 3339) plus detail.
type Listed struct {
	ID      string            `json:"id"`
	Target  string            `json:"target"`
	Type    string            `json:"type"`
	Time    string            `json:"time"`
	Service string            `json:"service,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Samples int               `json:"samples"`
	Bytes   int64             `json:"bytes"`
}

// Listing is stored profiles in a listing, in the order given.
type Listing []Listed

// ListingOf lists the profiles ms describe.
func ListingOf(ms []Meta) Listing {
	out := make(Listing, 0, len(ms))
	for _, m := range ms {
		out = append(out, listedOf(m))
	}
	return out
}

func listedOf(m Meta) Listed {
	return Listed{ID: m.ID, Target: m.Target, Type: m.Type, Time: m.Time.UTC().Format(time.RFC3339),
		Service: m.Service, Labels: m.Labels, Samples: m.Samples, Bytes: m.Bytes}
}

// WriteText writes the listing as a table.
func (l Listing) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tTIME\tSERVICE\tTARGET")
	for _, e := range l {
		service := e.Service
		if service == "" {
			service = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.ID, e.Type, e.Time, service, e.Target)
	}
	return tw.Flush()
}

// WriteMatches writes the listing as a table, or, when it is empty, one
// line saying no stored profile in storeDir matches.
func (l Listing) WriteMatches(w io.Writer, storeDir string) error {
	if len(l) == 0 {
		_, err := fmt.Fprintf(w, "no stored profiles match (store: %s)\n", storeDir)
		return err
	}
	return l.WriteText(w)
}

// WriteRemoved writes "removed ID", one line per profile removed.
func (l Listing) WriteRemoved(w io.Writer) error {
	for _, e := range l {
		if _, err := fmt.Fprintf(w, "removed %s\n", e.ID); err != nil {
			return err
		}
	}
	return nil
}

// WritePruned writes what a prune removed (or, with dryRun, would
// remove), one line per profile, then the count.
func (l Listing) WritePruned(w io.Writer, dryRun bool) error {
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	for _, e := range l {
		fmt.Fprintf(w, "%s %s\n", verb, e.ID)
	}
	_, err := fmt.Fprintf(w, "%s %d profiles\n", verb, len(l))
	return err
}

// Shown is one profile shown: its metadata, its sample types and its top
// functions by one sample type.
type Shown struct {
	Listed
	SampleTypes []ValueType `json:"sample_types"`
	Top         *DiffReport `json:"top"`
}

// Show describes c, with its top functions as Summarize ranks them.
func Show(c *Captured, opts DiffOptions) (*Shown, error) {
	sts, err := c.SampleTypes()
	if err != nil {
		return nil, err
	}
	rep, err := Summarize(c, opts)
	if err != nil {
		return nil, err
	}
	return &Shown{Listed: listedOf(c.Meta), SampleTypes: sts, Top: rep}, nil
}

// WriteText writes the metadata, one per line, then the top functions.
func (s *Shown) WriteText(w io.Writer) error {
	e := s.Listed
	fmt.Fprintf(w, "id:       %s\ntype:     %s\ntarget:   %s\ntime:     %s\n", e.ID, e.Type, e.Target, e.Time)
	if e.Service != "" {
		fmt.Fprintf(w, "service:  %s\n", e.Service)
	}
	for k, v := range e.Labels {
		fmt.Fprintf(w, "label:    %s=%s\n", k, v)
	}
	fmt.Fprintf(w, "samples:  %d\nsize:     %s\n", e.Samples, FormatValue(e.Bytes, "bytes", false))
	var names []string
	for _, st := range s.SampleTypes {
		names = append(names, st.Type+" ("+st.Unit+")")
	}
	fmt.Fprintf(w, "values:   %s\n\n", strings.Join(names, ", "))
	return s.Top.WriteText(w)
}
