package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// redLegend names a series the way the catalog does.
const redLegend = "{{service}} ({{variant}})"

// redSel narrows a leaklab_http_* selector to the chosen services and
// variants as well as job and instance.
func redSel(metric string, extra ...string) string {
	return sel(metric, append([]string{`service=~"$service"`, `variant=~"$variant"`}, extra...)...)
}

// redDashboard shows each sample service's requests: rate, errors and
// duration (RED), per service and variant, so a leaky twin and its fixed
// twin can be compared side by side.
func redDashboard() *dashboard.DashboardBuilder {
	byService := "sum by (service, variant) "
	requests := byService + "(" + rate(redSel("leaklab_http_requests_total")) + ")"
	errors := byService + "(" + rate(redSel("leaklab_http_requests_total", `code=~"5.."`)) + ")"
	quantile := func(q string) target {
		return target{
			"histogram_quantile(" + q + ", sum by (service, variant, le) (" + rate(redSel("leaklab_http_request_duration_seconds_bucket")) + "))",
			"p" + q[2:] + " · " + redLegend,
		}
	}

	return baseDashboard("Requests, errors and latency of each leaklab sample service, per service and variant (leaky or fixed), from leaklab_http_* on the services' /metrics.", "red").
		WithVariable(datasourceVariable()).
		WithVariable(labelVariable("job", "Job", "leaklab_http_requests_in_flight")).
		WithVariable(labelVariable("instance", "Instance", "leaklab_http_requests_in_flight", `job=~"$job"`)).
		WithVariable(labelVariable("service", "Service", "leaklab_http_requests_in_flight", `job=~"$job"`, `instance=~"$instance"`)).
		WithVariable(labelVariable("variant", "Variant", "leaklab_http_requests_in_flight", `job=~"$job"`, `instance=~"$instance"`, `service=~"$service"`)).
		WithRow(dashboard.NewRowBuilder("Rate and errors")).
		WithPanel(graph("Request rate",
			"App requests served per second (every status), per service and variant.",
			"reqps", third,
			target{requests, redLegend})).
		WithPanel(graph("Error ratio",
			"Share of app requests answered with a 5xx status. Shown as 0 (not 'no data') while a service has served requests without errors.",
			"percentunit", third,
			// "or ... * 0" keeps a zero line for services with traffic but no 5xx yet.
			target{"(" + errors + " or " + requests + " * 0) / " + requests, redLegend})).
		WithPanel(graph("Requests in flight",
			"App requests being served right now. A slow path or a lock shows as requests piling up here.",
			"short", third,
			target{redSel("leaklab_http_requests_in_flight"), redLegend})).
		WithRow(dashboard.NewRowBuilder("Duration")).
		WithPanel(graph("Latency quantiles",
			"p50, p90 and p99 of app request latency from the leaklab_http_request_duration_seconds histogram.",
			"s", half, quantile("0.5"), quantile("0.9"), quantile("0.99"))).
		WithPanel(graph("Request rate by route and status",
			"App requests per second by route (the mux pattern, never raw IDs) and status code.",
			"reqps", half,
			target{"sum by (service, variant, route, code) (" + rate(redSel("leaklab_http_requests_total")) + ")", "{{service}} ({{variant}}) {{route}} {{code}}"}))
}
