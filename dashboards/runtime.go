package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// runtimeLegend names a series by instance, and by service and variant when
// the target carries them (the sample services' file_sd labels do; another
// Go service's series just show their instance).
const runtimeLegend = "{{instance}} {{service}} {{variant}}"

// growthWindow is the range deriv() fits its line over: long enough that a
// GC cycle's sawtooth does not read as a leak, short enough to react.
const growthWindow = "$growth_window"

// runtimeDashboard shows the Go runtime and process of any service that
// exports client_golang's Go collector with runtime/metrics: memory,
// goroutines, GC, and growth rates that make a leak plain at a glance.
func runtimeDashboard() *dashboard.DashboardBuilder {
	goroutineStates := []struct{ state, metric string }{
		{"running", "go_sched_goroutines_running_goroutines"},
		{"runnable", "go_sched_goroutines_runnable_goroutines"},
		{"waiting", "go_sched_goroutines_waiting_goroutines"},
		{"not in Go (syscall, cgo)", "go_sched_goroutines_not_in_go_goroutines"},
	}
	var stateTargets []target
	for _, s := range goroutineStates {
		stateTargets = append(stateTargets, target{sel(s.metric), s.state + " · " + runtimeLegend})
	}
	pause := func(q string) target {
		return target{
			"histogram_quantile(" + q + ", sum by (job, instance, service, variant, le) (" + rate(sel("go_sched_pauses_total_gc_seconds_bucket")) + "))",
			"p" + q[2:] + " · " + runtimeLegend,
		}
	}

	// The "Is it leaking?" stats and the growth time series show the same
	// slopes: one expression each.
	heapGrowth := target{"deriv(" + sel("go_gc_heap_live_bytes") + "[" + growthWindow + "])", runtimeLegend}
	goroutineGrowth := target{"deriv(" + sel("go_sched_goroutines_goroutines") + "[" + growthWindow + "]) * 60", runtimeLegend}
	rssGrowth := target{"deriv(" + sel("process_resident_memory_bytes") + "[" + growthWindow + "])", runtimeLegend}

	return baseDashboard("Go runtime and process metrics of each service: live heap, RSS, goroutines by state, allocation rate, GC pauses and CPU, open files, and growth rates that make a leak visible at a glance.", "runtime").
		WithVariable(datasourceVariable()).
		WithVariable(labelVariable("job", "Job", "go_info")).
		WithVariable(labelVariable("instance", "Instance", "go_info", `job=~"$job"`)).
		WithVariable(dashboard.NewIntervalVariableBuilder("growth_window").
			Label("Growth window").
			Description("The range the growth panels fit a line over (deriv). Longer smooths GC sawtooth; shorter reacts faster.").
			Values(dashboard.StringOrMap{String: ptr("5m,15m,30m,1h")}).
			Current(option("15m", "15m"))).
		WithRow(dashboard.NewRowBuilder("Is it leaking?")).
		WithPanel(growthStat("Live heap growth",
			"Slope of the live heap (bytes marked live by the last GC) over the growth window. A leak keeps this above zero while traffic runs; a healthy service hovers around zero.",
			"Bps", 1024, heapGrowth)).
		WithPanel(growthStat("Goroutine growth",
			"Goroutines added per minute over the growth window. A goroutine leak keeps this above zero; a healthy service returns to zero.",
			"cpm", 1, goroutineGrowth)).
		WithPanel(growthStat("RSS growth",
			"Slope of the resident set size over the growth window: what the operating system sees, including heap the runtime has not yet returned.",
			"Bps", 64*1024, rssGrowth)).
		WithRow(dashboard.NewRowBuilder("Memory")).
		WithPanel(graph("Live heap and heap goal",
			"Live heap: bytes of heap objects the last GC found reachable. Heap goal: the heap size at which the next GC starts (GOGC, GOMEMLIMIT). A leak lifts the live heap's floor cycle after cycle.",
			"bytes", third,
			target{sel("go_gc_heap_live_bytes"), "live · " + runtimeLegend},
			target{sel("go_gc_heap_goal_bytes"), "goal · " + runtimeLegend})).
		WithPanel(graph("Resident memory (RSS)",
			"Resident set size of the process as the kernel counts it.",
			"bytes", third,
			target{sel("process_resident_memory_bytes"), runtimeLegend})).
		WithPanel(graph("Deliberate leak vs its cap",
			"Bytes a leaky sample service has retained on purpose (estimated) and its --max-leak cap; past the cap it stops leaking. Empty for services that are not leaklab samples.",
			"bytes", third,
			target{sel("leaklab_leak_retained_bytes"), "retained · " + runtimeLegend},
			target{sel("leaklab_leak_limit_bytes"), "cap · " + runtimeLegend})).
		WithPanel(graph("Allocation rate",
			"Bytes allocated on the heap per second (rate of go_gc_heap_allocs_bytes_total). High allocation with a flat live heap is garbage, not a leak: it costs GC CPU.",
			"Bps", half,
			target{rate(sel("go_gc_heap_allocs_bytes_total")), runtimeLegend})).
		WithPanel(graph("Live heap growth rate",
			"deriv() of the live heap over the growth window, as a time series: a leak is a line that stays above zero.",
			"Bps", half, heapGrowth)).
		WithRow(dashboard.NewRowBuilder("Goroutines")).
		WithPanel(graph("Goroutines by state",
			"Goroutines the scheduler has running, runnable (waiting for a P), waiting (blocked on a channel, lock, timer or network), and outside Go (in a syscall or cgo). A goroutine leak grows 'waiting'.",
			"short", half, stateTargets...).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))).
		WithPanel(graph("Goroutine growth rate",
			"Goroutines added per minute (deriv over the growth window). It stays above zero while goroutines leak.",
			"cpm", half, goroutineGrowth)).
		WithRow(dashboard.NewRowBuilder("Garbage collector")).
		WithPanel(graph("GC stop-the-world pauses",
			"Quantiles of the total stop-the-world pause of each GC, from the runtime's histogram (go_sched_pauses_total_gc_seconds).",
			"s", third, pause("0.5"), pause("0.9"), pause("0.99"))).
		WithPanel(graph("GC CPU share",
			"Share of the process's CPU capacity (GOMAXPROCS × wall time) the garbage collector used: mark assists, background workers and pauses.",
			"percentunit", third,
			target{rate(sel("go_cpu_classes_gc_total_cpu_seconds_total")) + " / " + rate(sel("go_cpu_classes_total_cpu_seconds_total")), runtimeLegend})).
		WithPanel(graph("GC cycles per second",
			"Completed GC cycles per second. Garbage-heavy code paths make it climb with traffic.",
			"short", third,
			target{rate(sel("go_gc_cycles_total_gc_cycles_total")), runtimeLegend})).
		WithRow(dashboard.NewRowBuilder("Process")).
		WithPanel(graph("Open file descriptors",
			"File descriptors the process holds (sockets included). Unclosed response bodies and leaked connections climb here.",
			"short", third,
			target{sel("process_open_fds"), runtimeLegend})).
		WithPanel(graph("CPU",
			"CPU seconds the process used per second (1 = one core busy).",
			"short", third,
			target{rate(sel("process_cpu_seconds_total")), runtimeLegend})).
		WithPanel(graph("Mutex wait",
			"Seconds goroutines spent blocked on sync.Mutex or sync.RWMutex per second of wall time. Lock contention shows here before it shows in CPU.",
			"s", third,
			target{rate(sel("go_sync_mutex_wait_total_seconds_total")), runtimeLegend}))
}
