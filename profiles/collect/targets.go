package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/filesd"
	"github.com/leaklab/leaklab/internal/opterr"
)

// Target is one service to scrape profiles from.
type Target struct {
	// URL is the service's base URL (http://127.0.0.1:8080); profiles are
	// fetched from URL/debug/pprof/TYPE.
	URL string
	// Labels are stored with every profile taken from the target (job,
	// instance and whatever the discovery attached).
	Labels map[string]string
}

// Discoverer lists the targets to scrape. It is asked again every
// Options.Refresh, so targets may come and go.
type Discoverer interface {
	Targets(ctx context.Context) ([]Target, error)
}

// StaticTargets is a fixed list of targets.
type StaticTargets []Target

// Targets returns the list.
func (s StaticTargets) Targets(context.Context) ([]Target, error) { return s, nil }

// maxTargetsFile bounds what reading a targets file may cost.
const maxTargetsFile = 16 << 20

// FileTargets reads a Prometheus file_sd file (JSON or YAML):
//
//	[{"targets": ["127.0.0.1:8080"], "labels": {"env": "dev"}}]
//
// The file is read again on every refresh, as Prometheus does, so editing
// it adds and removes targets without a restart.
type FileTargets struct{ Path string }

// Targets reads and parses the file.
func (f FileTargets) Targets(context.Context) ([]Target, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("targets file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxTargetsFile+1))
	if err != nil {
		return nil, fmt.Errorf("targets file %s: %w", f.Path, err)
	}
	if len(data) > maxTargetsFile {
		return nil, fmt.Errorf("targets file %s is larger than %d bytes", f.Path, maxTargetsFile)
	}
	ts, err := parseFileSD(data)
	if err != nil {
		return nil, fmt.Errorf("targets file %s: %w", f.Path, err)
	}
	return ts, nil
}

// parseFileSD parses Prometheus file_sd content, JSON or YAML. A target
// may be host:port (http is assumed, or the __scheme__ label's scheme) or
// a full http(s) URL; the job label defaults to "leaklab" and instance to
// the host:port, as Prometheus would set them.
func parseFileSD(data []byte) ([]Target, error) {
	groups, err := filesd.Parse(data)
	if err != nil {
		return nil, err
	}
	var out []Target
	seen := map[string]bool{}
	for i, g := range groups {
		if len(g.Targets) == 0 {
			return nil, fmt.Errorf("entry %d has no targets", i+1)
		}
		for _, addr := range g.Targets {
			t, err := fileTarget(addr, g.Labels)
			if err != nil {
				return nil, fmt.Errorf("entry %d: %w", i+1, err)
			}
			if seen[t.URL] {
				continue
			}
			seen[t.URL] = true
			out = append(out, t)
		}
	}
	return out, nil
}

func fileTarget(addr string, groupLabels map[string]string) (Target, error) {
	labels := map[string]string{}
	for k, v := range groupLabels {
		labels[k] = v
	}
	scheme := labels["__scheme__"]
	if scheme == "" {
		scheme = "http"
	}
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = scheme + "://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return Target{}, fmt.Errorf("target %q is not host:port or an http(s) URL", addr)
	}
	base := u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
	for k := range labels {
		if strings.HasPrefix(k, "__") {
			delete(labels, k) // Prometheus drops these after relabelling too
		}
	}
	if labels["job"] == "" {
		labels["job"] = "leaklab"
	}
	if labels["instance"] == "" {
		labels["instance"] = u.Host
	}
	return Target{URL: base, Labels: labels}, nil
}

// PrometheusTargets discovers targets from a running Prometheus's
// /api/v1/targets: every active target (of the given jobs, when Jobs is
// set) becomes a profile target at its scrape URL's scheme and host, with
// its labels. Whatever discovery Prometheus does (Kubernetes, Consul,
// file, DNS…) therefore works here unchanged.
type PrometheusTargets struct {
	URL    string
	Jobs   []string
	Client *http.Client
}

// maxTargetsAnswer bounds the /api/v1/targets answer read.
const maxTargetsAnswer = 64 << 20

type promTargetsAnswer struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			ScrapeURL string            `json:"scrapeUrl"`
			Health    string            `json:"health"`
		} `json:"activeTargets"`
	} `json:"data"`
}

// Targets asks Prometheus for its active targets.
func (p PrometheusTargets) Targets(ctx context.Context) ([]Target, error) {
	base, err := url.Parse(p.URL)
	if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, opterr.Errorf("Prometheus", "prometheus URL %q: want http://host:port", p.URL)
	}
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/targets"
	u.RawQuery = "state=active"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking Prometheus for targets: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTargetsAnswer))
	if err != nil {
		return nil, fmt.Errorf("asking Prometheus for targets: %w", err)
	}
	var ans promTargetsAnswer
	if err := json.Unmarshal(body, &ans); err != nil || ans.Status == "" {
		return nil, fmt.Errorf("%s answered HTTP %d with something that is not the Prometheus targets API (is it Prometheus?)", u.String(), resp.StatusCode)
	}
	if ans.Status != "success" {
		return nil, fmt.Errorf("%s: %s", u.String(), ans.Error)
	}
	var out []Target
	seen := map[string]bool{}
	for _, at := range ans.Data.ActiveTargets {
		if len(p.Jobs) > 0 && !slices.Contains(p.Jobs, at.Labels["job"]) {
			continue
		}
		su, err := url.Parse(at.ScrapeURL)
		if err != nil || su.Host == "" {
			continue
		}
		t := Target{URL: su.Scheme + "://" + su.Host, Labels: map[string]string{}}
		for k, v := range at.Labels {
			t.Labels[k] = v
		}
		if seen[t.URL] {
			continue
		}
		seen[t.URL] = true
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out, nil
}
