package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/grafanapyroscope"
)

// Pyroscope profile type ids of the profiles pyroscope-go pushes
// (leaks/pyroscope.go turns them on).
const (
	ProfileInuseSpace = "memory:inuse_space:bytes:space:bytes"
	ProfileGoroutines = "goroutines:goroutine:count:goroutine:count"
	ProfileCPU        = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
)

// pyroscopeSelector picks the selected service's profiles: pyroscope-go
// pushes them as application "leaklab.<service>" (Pyroscope's service_name)
// tagged with service and variant.
const pyroscopeSelector = `{service_name="` + PyroscopeAppPrefix + `$service", variant="$variant"}`

func pyroscopeDatasource() common.DataSourceRef {
	return common.DataSourceRef{Type: ptr("grafana-pyroscope-datasource"), Uid: ptr("${pyroscope}")}
}

// flameGraph is a Grafana flame graph panel over one Pyroscope profile
// type of the selected service.
func flameGraph(title, description, profileType, unit string) *dashboard.PanelBuilder {
	return dashboard.NewPanelBuilder().
		Type("flamegraph").
		Title(title).
		Description(description).
		Datasource(pyroscopeDatasource()).
		Unit(unit).
		Span(full).
		Height(14).
		WithTarget(grafanapyroscope.NewDataqueryBuilder().
			Datasource(pyroscopeDatasource()).
			QueryType("profile").
			ProfileTypeId(profileType).
			LabelSelector(pyroscopeSelector).
			GroupBy([]string{}).
			RefId("A"))
}

// profilesDashboard shows Pyroscope flame graphs of one sample service
// (started with --pyroscope), under the Prometheus series that say when to
// look: live heap and goroutines of the same service.
func profilesDashboard() *dashboard.DashboardBuilder {
	svc := []string{`service=~"$service"`, `variant=~"$variant"`}
	return baseDashboard("Pyroscope flame graphs (in-use memory, goroutines, CPU) of one leaklab sample service, under its live heap and goroutine count. Start services with --pyroscope to fill it.", "profiles").
		WithVariable(datasourceVariable()).
		WithVariable(pyroscopeVariable()).
		WithVariable(labelVariable("job", "Job", "leaklab_leak_limit_bytes")).
		WithVariable(labelVariable("instance", "Instance", "leaklab_leak_limit_bytes", `job=~"$job"`)).
		WithVariable(singleLabelVariable("service", "Service", "leaklab_leak_limit_bytes", `job=~"$job"`, `instance=~"$instance"`)).
		WithVariable(singleLabelVariable("variant", "Variant", "leaklab_leak_limit_bytes", `job=~"$job"`, `instance=~"$instance"`, `service=~"$service"`)).
		WithRow(dashboard.NewRowBuilder("When to look")).
		WithPanel(graph("Live heap",
			"Live heap of the selected service: pick a time range where it climbs, and the in-use flame graph below shows what holds the memory.",
			"bytes", half,
			target{sel("go_gc_heap_live_bytes", svc...), "{{instance}}"})).
		WithPanel(graph("Goroutines",
			"Goroutine count of the selected service: if it climbs, the goroutine flame graph shows where they wait.",
			"short", half,
			target{sel("go_sched_goroutines_goroutines", svc...), "{{instance}}"})).
		WithRow(dashboard.NewRowBuilder("Flame graphs")).
		WithPanel(flameGraph("In-use memory",
			"Bytes held live on the heap by call stack, over the selected time range. A leak is the widest frame that keeps growing.",
			ProfileInuseSpace, "bytes")).
		WithPanel(flameGraph("Goroutines",
			"Goroutines by the stack they are parked on. Leaked goroutines pile up under one frame.",
			ProfileGoroutines, "short")).
		WithPanel(flameGraph("CPU",
			"CPU time by call stack. Hot paths (a regexp compiled per request, a retry loop) are the wide frames.",
			ProfileCPU, "ns"))
}
