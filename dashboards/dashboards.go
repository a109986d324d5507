// Package dashboards builds leaklab's Grafana dashboards as Go code (with
// grafana-foundation-sdk) and the provisioning tree around them: Grafana
// datasource and dashboard providers, a Prometheus config that scrapes the
// sample services through a file_sd targets file, and a compose file for
// the whole stack. It sits at the end of the data flow: the services
// export /metrics and push profiles, Prometheus and Pyroscope store them,
// and these dashboards show them.
//
// The generated JSON is committed under stack/; `go test ./dashboards
// -update` regenerates it, and the tests fail while it is out of date.
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Fixed datasource uids: the provisioning files create datasources with
// these uids, and the dashboards' datasource variables default to them, so
// the stack works the first time without clicking.
const (
	PrometheusUID = "leaklab-prometheus"
	PyroscopeUID  = "leaklab-pyroscope"
)

// Job is the Prometheus job name the shipped config scrapes the sample
// services under.
const Job = "leaklab"

// PyroscopeAppPrefix prefixes a service name to make its Pyroscope
// application name (leaks/pyroscope.go pushes as "leaklab.<service>").
const PyroscopeAppPrefix = "leaklab."

// Dashboard is one generated dashboard.
type Dashboard struct {
	UID   string
	Title string
	// File is the JSON file's name under grafana/dashboards in the tree.
	File  string
	build func() *dashboard.DashboardBuilder
}

// All returns every dashboard leaklab ships, in a fixed order.
func All() []Dashboard {
	return []Dashboard{
		{UID: "leaklab-runtime", Title: "leaklab / Go runtime and leaks", File: "leaklab-runtime.json", build: runtimeDashboard},
		{UID: "leaklab-red", Title: "leaklab / Service RED", File: "leaklab-red.json", build: redDashboard},
		{UID: "leaklab-profiles", Title: "leaklab / Profiles", File: "leaklab-profiles.json", build: profilesDashboard},
		{UID: "leaklab-suspects", Title: "leaklab / Leak suspects", File: "leaklab-suspects.json", build: suspectsDashboard},
	}
}

// Build returns the dashboard model.
func (d Dashboard) Build() (dashboard.Dashboard, error) {
	model, err := d.build().Uid(d.UID).Title(d.Title).Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("dashboard %s: %w", d.UID, err)
	}
	// The builder leaves ids unset; Grafana needs them unique within the
	// dashboard for links and panel editing, and stable for golden files.
	id := uint32(0)
	for _, p := range model.Panels {
		id++
		switch {
		case p.Panel != nil:
			p.Panel.Id = ptr(id)
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
	return model, nil
}

// JSON returns the dashboard as Grafana reads it from a provisioned file:
// indented, with a trailing newline, byte-for-byte stable across runs.
func (d Dashboard) JSON() ([]byte, error) {
	model, err := d.Build()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // PromQL's =~ and > stay readable in the file
	if err := enc.Encode(model); err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.UID, err)
	}
	return buf.Bytes(), nil
}
