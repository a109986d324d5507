package collect

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The push side speaks the HTTP API of Grafana Pyroscope's /ingest as
// pyroscope-go uses it:
//
//	POST /ingest?name=APP{k=v,...}&from=T&until=T&spyName=gospy&sampleRate=100&units=U&aggregationType=A
//	Content-Type: multipart/form-data
//	  part "profile": the gzipped pprof profile
//	  part "sample_type_config" (optional): JSON {sample_type: {units, aggregation, display-name, cumulative}}
//
// from and until are Unix times (pyroscope-go sends nanoseconds; older
// clients send seconds).

// Limits on the name query, so that labels cannot be used to blow up the
// metadata files.
const (
	maxNameLen   = 4096
	maxLabels    = 64
	maxLabelName = 128
)

// appName is a parsed name= query: the application and its labels.
type appName struct {
	App    string
	Labels map[string]string
}

// parseAppName parses APP{k=v,k2=v2}. Keys are Prometheus-style label
// names (dots allowed, as in pyroscope-go's own labels); values run to the
// next comma or brace.
func parseAppName(s string) (appName, error) {
	if s == "" {
		return appName{}, errors.New("missing the name query parameter (want name=APP{label=value,...})")
	}
	if len(s) > maxNameLen {
		return appName{}, fmt.Errorf("the name query parameter is longer than %d bytes", maxNameLen)
	}
	app, rest, hasLabels := strings.Cut(s, "{")
	app = strings.TrimSpace(app)
	if app == "" {
		return appName{}, fmt.Errorf("name %q has no application name before the labels", s)
	}
	if strings.ContainsAny(app, "}=,\x00/") {
		return appName{}, fmt.Errorf("name %q: the application name may not contain }, =, comma or /", s)
	}
	n := appName{App: app, Labels: map[string]string{}}
	if !hasLabels {
		return n, nil
	}
	body, ok := strings.CutSuffix(strings.TrimSpace(rest), "}")
	if !ok {
		return appName{}, fmt.Errorf("name %q: the labels are not closed with }", s)
	}
	if strings.TrimSpace(body) == "" {
		return n, nil
	}
	for _, pair := range strings.Split(body, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !validLabelName(k) {
			return appName{}, fmt.Errorf("name %q: %q is not label=value with a label name of letters, digits, _ and .", s, pair)
		}
		if strings.ContainsAny(v, "{}") {
			return appName{}, fmt.Errorf("name %q: the value of %s contains a brace", s, k)
		}
		n.Labels[k] = v
		if len(n.Labels) > maxLabels {
			return appName{}, fmt.Errorf("name %q has more than %d labels", s, maxLabels)
		}
	}
	return n, nil
}

func validLabelName(k string) bool {
	if k == "" || len(k) > maxLabelName {
		return false
	}
	for i, r := range k {
		switch {
		case r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// String formats the name as the ingest API wants it, labels sorted so
// that the same series always gets the same name.
func (n appName) String() string {
	if len(n.Labels) == 0 {
		return n.App
	}
	keys := make([]string, 0, len(n.Labels))
	for k := range n.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(n.App)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(sanitizeLabelValue(n.Labels[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// sanitizeLabelValue keeps a value from breaking the name syntax.
func sanitizeLabelValue(v string) string {
	return strings.NewReplacer(",", "_", "{", "_", "}", "_").Replace(v)
}

// sanitizeAppName turns a string into something the name syntax accepts.
func sanitizeAppName(s string) string {
	s = strings.NewReplacer(",", "_", "{", "_", "}", "_", "=", "_", "/", "_", "\x00", "").Replace(s)
	if s == "" {
		return "unknown"
	}
	return s
}

// parseIngestTime reads a from/until value: Unix seconds, milliseconds,
// microseconds or nanoseconds, told apart by magnitude (as Pyroscope
// does). Empty gives the zero time.
func parseIngestTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return time.Time{}, fmt.Errorf("%q is not a Unix time", s)
	}
	switch {
	case v > 1e17:
		return time.Unix(0, v).UTC(), nil
	case v > 1e14:
		return time.UnixMicro(v).UTC(), nil
	case v > 1e11:
		return time.UnixMilli(v).UTC(), nil
	}
	return time.Unix(v, 0).UTC(), nil
}
