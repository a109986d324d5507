package dashboards

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The grid is 24 units wide; panels come in thirds and halves.
const (
	panelHeight = 8
	third       = 8
	half        = 12
	full        = 24
)

// allValue is what a multi-select variable set to All expands to. The
// dashboard linter asks for ".+" so that All never matches a missing label.
const allValue = ".+"

// sel writes a PromQL selector for metric that every panel needs: filtered
// by the job and instance variables (never a hard-coded job or instance),
// plus any extra matchers such as `service=~"$service"`.
func sel(metric string, extra ...string) string {
	matchers := append([]string{`job=~"$job"`, `instance=~"$instance"`}, extra...)
	return metric + "{" + strings.Join(matchers, ", ") + "}"
}

// rate wraps a counter selector in rate over Grafana's $__rate_interval,
// which is always at least four scrape intervals.
func rate(selector string) string {
	return "rate(" + selector + "[$__rate_interval])"
}

// target is one PromQL query of a panel and its legend.
type target struct {
	expr   string
	legend string
}

func promTargets(ts []target) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], 0, len(ts))
	for i, t := range ts {
		out = append(out, prometheus.NewDataqueryBuilder().
			Datasource(promDatasource()).
			Expr(t.expr).
			LegendFormat(t.legend).
			RefId(string(rune('A'+i))).
			Range())
	}
	return out
}

func promDatasource() common.DataSourceRef {
	return common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}
}

func ptr[T any](v T) *T { return &v }

// graph is a time-series panel: every panel says what it shows and in
// which unit.
func graph(title, description, unit string, width uint32, ts ...target) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(promDatasource()).
		Unit(unit).
		Span(width).
		Height(panelHeight).
		FillOpacity(10).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)).
		Targets(promTargets(ts))
}

// growthStat is a single number coloured by sign, for the "is it leaking?"
// glance: green when flat or shrinking, red when growing faster than warn.
func growthStat(title, description, unit string, warn float64, t target) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(promDatasource()).
		Unit(unit).
		Span(third).
		Height(4).
		Decimals(1).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeArea).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Thresholds(dashboard.NewThresholdsConfigBuilder().
			Mode(dashboard.ThresholdsModeAbsolute).
			Steps([]dashboard.Threshold{
				{Color: "green"},
				{Value: ptr(warn), Color: "red"},
			})).
		Targets(promTargets([]target{t}))
}

// Template variables. Every dashboard has datasource, job and instance;
// the query variables refresh when the time range changes so that services
// started later show up, as grafana/dashboard-linter asks.

func datasourceVariable() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder("datasource").
		Label("Data source").
		Type("prometheus").
		Current(option("Prometheus", PrometheusUID))
}

func pyroscopeVariable() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder("pyroscope").
		Label("Profiles data source").
		Type("grafana-pyroscope-datasource").
		Current(option("Pyroscope", PyroscopeUID))
}

// labelVariable is a multi-select query variable over one label of metric,
// narrowed by the variables before it.
func labelVariable(name, label, metric string, narrow ...string) *dashboard.QueryVariableBuilder {
	matchers := ""
	if len(narrow) > 0 {
		matchers = "{" + strings.Join(narrow, ", ") + "}"
	}
	query := fmt.Sprintf("label_values(%s%s, %s)", metric, matchers, name)
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(promDatasource()).
		Query(dashboard.StringOrMap{String: ptr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(allValue).
		Current(option("All", "$__all"))
}

// singleLabelVariable is a query variable that selects exactly one value,
// for dashboards (flame graphs) that show one service at a time.
func singleLabelVariable(name, label, metric string, narrow ...string) *dashboard.QueryVariableBuilder {
	return labelVariable(name, label, metric, narrow...).
		Multi(false).
		IncludeAll(false).
		AllValue("")
}

func option(text, value string) dashboard.VariableOption {
	return dashboard.VariableOption{
		Text:  dashboard.StringOrArrayOfString{String: ptr(text)},
		Value: dashboard.StringOrArrayOfString{String: ptr(value)},
	}
}

// baseDashboard sets what every leaklab dashboard shares.
func baseDashboard(description string, tags ...string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder("").
		Description(description).
		Tags(append([]string{"leaklab", "go"}, tags...)).
		Readonly(). // provisioned from files: edits in the UI would be lost
		Refresh("10s").
		Time("now-30m", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair)
}
