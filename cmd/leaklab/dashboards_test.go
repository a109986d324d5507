package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestDashboardsExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stack")
	streams, out, errOut := testStreams()
	if code := run([]string{"dashboards", "export", dir, "--output", "json"}, streams); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var report struct {
		Dir   string   `json:"dir"`
		Files []string `json:"files"`
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if report.Dir != dir || len(report.Files) == 0 {
		t.Errorf("report %+v", report)
	}
	for _, f := range report.Files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("reported %s but it is not there: %v", f, err)
		}
	}
	for _, want := range []string{"compose.yaml", "prometheus/prometheus.yml", "grafana/dashboards/leaklab-runtime.json", "grafana/provisioning/datasources/leaklab.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("%s missing: %v", want, err)
		}
	}

	// A second export into the now non-empty directory is refused...
	streams, _, errOut = testStreams()
	if code := run([]string{"dashboards", "export", dir}, streams); code != exitUsage {
		t.Errorf("export into a non-empty dir: exit %d, want %d", code, exitUsage)
	}
	// ...unless forced.
	streams, _, errOut = testStreams()
	if code := run([]string{"dashboards", "export", dir, "--force"}, streams); code != exitOK {
		t.Errorf("export --force: exit %d: %s", code, errOut)
	}
	streams, _, _ = testStreams()
	if code := run([]string{"dashboards", "export"}, streams); code != exitUsage {
		t.Errorf("export without DIR: exit %d, want %d", code, exitUsage)
	}
}
