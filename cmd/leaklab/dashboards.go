package main

import (
	"context"

	"github.com/leaklab/leaklab/dashboards"
	"github.com/spf13/cobra"
)

type dashboardsExportOptions struct {
	force bool
}

// exportReport is what 'dashboards export' reports.
func newCmdDashboards(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboards",
		Short: "Grafana dashboards, Prometheus and Pyroscope provisioning for the services",
		Long: `leaklab ships Grafana dashboards (Go runtime and leaks, service RED,
Pyroscope profiles), the Grafana provisioning that loads them, a Prometheus
config that scrapes the sample services, and a compose file for the stack.`,
		Example: `  leaklab dashboards export ./leaklab-stack`,
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newCmdDashboardsExport(f))
	return cmd
}

func newCmdDashboardsExport(f *factory) *cobra.Command {
	opts := &dashboardsExportOptions{}
	cmd := &cobra.Command{
		Use:   "export DIR",
		Short: "Write the dashboards and the provisioning tree into DIR",
		Long: `Write the whole provisioning tree into DIR:

  grafana/provisioning/   datasources (Prometheus, Pyroscope; fixed uids) and a dashboards provider
  grafana/dashboards/     the dashboards' JSON
  prometheus/             prometheus.yml, scraping the services listed in prometheus/targets/*.json
  compose.yaml            Grafana, Prometheus, Pyroscope and the services, for Docker

DIR must be new or empty unless --force. Start the services with
'leaklab run --all --targets-file DIR/prometheus/targets/leaklab.json'.`,
		Example: `  leaklab dashboards export ./leaklab-stack
  leaklab run --all --targets-file ./leaklab-stack/prometheus/targets/leaklab.json &
  prometheus --config.file ./leaklab-stack/prometheus/prometheus.yml --web.listen-address 127.0.0.1:9090
  leaklab dashboards export ./leaklab-stack --force --output json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("dashboards export takes one directory")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return dashboardsExportRun(cmd.Context(), f, opts, args[0])
		},
	}
	cmd.Flags().BoolVar(&opts.force, "force", false, "write into a directory that has files, replacing leaklab's own")
	return cmd
}

func dashboardsExportRun(ctx context.Context, f *factory, opts *dashboardsExportOptions, dir string) error {
	files, err := dashboards.Export(ctx, dir, dashboards.ExportOptions{Force: opts.force})
	if err != nil {
		return err // a directory with files in it is an opterr: exit 2
	}
	exported := dashboards.Exported{Dir: dir, Files: files}
	return f.render(exported, exported.WriteText)
}
