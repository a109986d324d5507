package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/leaklab/leaklab/leaks"
	"github.com/spf13/cobra"
)

// serviceEntry is the services report; the culprit and explanation are
// withheld unless --spoilers, so the catalog can be browsed as exercises.
type serviceEntry struct {
	Name        string           `json:"name"`
	Kind        leaks.Kind       `json:"kind"`
	Summary     string           `json:"summary"`
	Hints       []string         `json:"hints"`
	Profile     string           `json:"profile"`
	Endpoints   []leaks.Endpoint `json:"endpoints"`
	Symptom     leaks.Symptom    `json:"symptom"`
	Culprit     string           `json:"culprit,omitempty"`
	Retainer    string           `json:"retainer,omitempty"`
	Explanation string           `json:"explanation,omitempty"`
}

type servicesOptions struct {
	spoilers bool
	kind     string
}

func newCmdServices(f *factory) *cobra.Command {
	opts := &servicesOptions{}
	cmd := &cobra.Command{
		Use:   "services [NAME]",
		Short: "List the sample-service catalog, or show one service",
		Long: `List the catalog of sample services. Each is intentionally leaky or slow and
has a fixed twin (run it with 'leaklab run NAME --fixed').

The culprit (the function a correct diagnosis points at) is withheld unless
you pass --spoilers.`,
		Example: `  leaklab services
  leaklab services --kind goroutine
  leaklab services abandoned-worker
  leaklab services --output json --spoilers`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeServiceNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			return servicesRun(f, opts, args)
		},
	}
	cmd.Flags().BoolVar(&opts.spoilers, "spoilers", false, "show each service's culprit and explanation")
	cmd.Flags().StringVar(&opts.kind, "kind", "", "only services of this kind (heap, goroutine, cpu, lock, alloc)")
	return cmd
}

func completeServiceNames(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return leaks.Names(), cobra.ShellCompDirectiveNoFileComp
}

func servicesRun(f *factory, opts *servicesOptions, args []string) error {
	var selected []*leaks.Service
	if len(args) == 1 {
		svc, err := leaks.Lookup(args[0])
		if err != nil {
			return &usageError{err: err}
		}
		selected = append(selected, svc)
	} else {
		for _, s := range leaks.All() {
			if opts.kind == "" || string(s.Kind) == opts.kind {
				selected = append(selected, s)
			}
		}
		if len(selected) == 0 {
			return usageErrorf("no service of kind %q (kinds: heap, goroutine, cpu, lock, alloc)", opts.kind)
		}
	}
	entries := make([]serviceEntry, 0, len(selected))
	for _, s := range selected {
		e := serviceEntry{Name: s.Name, Kind: s.Kind, Summary: s.Summary, Hints: s.Hints, Profile: s.Profile, Endpoints: s.Endpoints, Symptom: s.Symptom}
		if opts.spoilers {
			e.Culprit, e.Retainer, e.Explanation = s.Culprit, s.Retainer, s.Explanation
		}
		entries = append(entries, e)
	}
	if len(args) == 1 {
		return f.render(entries[0], func(w io.Writer) error { return writeServiceDetail(w, entries[0]) })
	}
	return f.render(entries, func(w io.Writer) error { return writeServiceTable(w, entries, opts.spoilers) })
}

func writeServiceTable(w io.Writer, entries []serviceEntry, spoilers bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if spoilers {
		fmt.Fprintln(tw, "NAME\tKIND\tCULPRIT")
		for _, e := range entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, e.Kind, strings.TrimPrefix(e.Culprit, "github.com/leaklab/leaklab/"))
		}
	} else {
		fmt.Fprintln(tw, "NAME\tKIND\tSYMPTOM")
		for _, e := range entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, e.Kind, firstSentence(e.Summary))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d services. 'leaklab services NAME' for hints and endpoints; 'leaklab run NAME' to start one.\n", len(entries))
	return err
}

func writeServiceDetail(w io.Writer, e serviceEntry) error {
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
