package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// CollectJob is the job the shipped Prometheus config scrapes a 'leaklab
// collect' under.
const CollectJob = "leaklab-collect"

// suspectSel selects a collector's series for the selected targets.
func suspectSel(metric string, extra ...string) string {
	return sel(metric, append([]string{`target=~"$target"`}, extra...)...)
}

// suspectsExpr is every current suspect with its growth as the value: the
// LeakSuspect alert's expression, before its 'for'.
func suspectsExpr() string {
	return "max without (confidence) (" + suspectSel("leaklab_leak_growth_per_minute") +
		" and on (job, instance, target, kind, function) " + suspectSel("leaklab_leak_suspect") + " == 1)"
}

// suspectsDashboard shows the leak suspects a 'leaklab collect' with
// detection finds across the fleet: which functions of which targets, how
// fast they grow, and links to the collector's /suspects page, where each
// suspect has its trend and the pprof diff of the profiles that bound it.
func suspectsDashboard() *dashboard.DashboardBuilder {
	instant := func(expr string) []cog.Builder[variants.Dataquery] {
		return []cog.Builder[variants.Dataquery]{prometheus.NewDataqueryBuilder().
			Datasource(promDatasource()).
			Expr(expr).
			Format(prometheus.PromQueryFormatTable).
			Instant().
			RefId("A")}
	}
	suspectsPage := "http://${__data.fields.instance}/suspects"
	return baseDashboard("Leak suspects found by 'leaklab collect' across the fleet: the functions whose heap or goroutines keep growing over the detection window, by target, with links to the collector's /suspects page (trend charts, pprof diffs). The LeakSuspect alert fires when one lasts 15 minutes.", "leaks").
		WithVariable(datasourceVariable()).
		WithVariable(labelVariable("job", "Job", "leaklab_leak_detection_seconds_count")).
		WithVariable(labelVariable("instance", "Instance", "leaklab_leak_detection_seconds_count", `job=~"$job"`)).
		WithVariable(labelVariable("target", "Target", "leaklab_collect_target_up", `job=~"$job"`, `instance=~"$instance"`)).
		Link(dashboard.NewDashboardLinkBuilder("All suspects (collector)").
			Type(dashboard.DashboardLinkTypeLink).
			Url("http://${instance}/suspects").
			Tooltip("The collector's /suspects page: every suspect with its trend chart and a pprof diff link (pick one collector first).").
			TargetBlank(true)).
		WithRow(dashboard.NewRowBuilder("Suspects now")).
		WithPanel(table.NewPanelBuilder().
			Title("Leak suspects").
			Description("Every current suspect: the function (first frame in the target's own code), its kind (heap or goroutine) and its growth per minute over the detection window. Click a row for the collector's /suspects page.").
			Datasource(promDatasource()).
			Unit("short").
			Span(full).
			Height(10).
			DataLinks([]cog.Builder[dashboard.DashboardLink]{dashboard.NewDashboardLinkBuilder("Suspects on the collector").
				Type(dashboard.DashboardLinkTypeLink).
				Url(suspectsPage).
				TargetBlank(true)}).
			Targets(instant(suspectsExpr()))).
		WithPanel(graph("Suspects per target",
			"How many sites of each target are leak suspects. A target that keeps one for the alert's 15 minutes fires LeakSuspect.",
			"short", half,
			target{"count by (target, kind) (" + suspectSel("leaklab_leak_suspect") + ")", "{{target}} {{kind}}"})).
		WithPanel(graph("Heap growth of suspects",
			"Growth of each heap suspect's in-use bytes (Theil–Sen slope over the detection window).",
			"Bps", half,
			target{suspectSel("leaklab_leak_growth_per_minute", `unit="bytes"`) + " / 60", "{{target}} {{function}}"})).
		WithRow(dashboard.NewRowBuilder("Detection")).
		WithPanel(graph("Goroutine growth of suspects",
			"Goroutines added per minute at each goroutine suspect (Theil–Sen slope over the detection window).",
			"cpm", half,
			target{suspectSel("leaklab_leak_growth_per_minute", `unit="goroutines"`), "{{target}} {{function}}"})).
		WithPanel(graph("Judging time",
			"How long the collector takes to judge one target's window after a capture round (p50 and p99): what detection costs per capture.",
			"s", half,
			target{"histogram_quantile(0.5, sum by (job, instance, le) (" + rate(sel("leaklab_leak_detection_seconds_bucket")) + "))", "p50 {{instance}}"},
			target{"histogram_quantile(0.99, sum by (job, instance, le) (" + rate(sel("leaklab_leak_detection_seconds_bucket")) + "))", "p99 {{instance}}"}))
}
