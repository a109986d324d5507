package main

import (
	"github.com/leaklab/leaklab/leaks"
	"github.com/spf13/cobra"
)

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
	if len(args) == 1 {
		svc, err := leaks.Lookup(args[0])
		if err != nil {
			return &usageError{err: err}
		}
		entry := svc.Entry(opts.spoilers)
		return f.render(entry, entry.WriteText)
	}
	entries, err := leaks.CatalogEntries(opts.kind, opts.spoilers)
	if err != nil {
		return err
	}
	return f.render(entries, entries.WriteText)
}
