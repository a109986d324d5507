package collect

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/leaklab/leaklab/internal/bytesize"
)

// Trend chart geometry, in SVG user units.
const (
	chartWidth  = 320
	chartHeight = 80
	chartPad    = 4
)

var suspectsPage = template.Must(template.New("suspects").Funcs(template.FuncMap{
	"growth": formatGrowth,
	"since":  func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
	"chart":  trendPolyline,
	"diff": func(s Suspect) string {
		return "/suspects/diff/" + url.PathEscape(s.BaseID) + "/" + url.PathEscape(s.CurrentID) + "/ui/"
	},
	"w": func() int { return chartWidth },
	"h": func() int { return chartHeight },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>leaklab: leak suspects</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{padding:.4em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
code{font-size:.9em}.proven{color:#a00;font-weight:bold}.likely{color:#c50}.possible{color:#777}
svg{background:#fafafa;border:1px solid #eee}
</style></head><body>
<h1>Leak suspects</h1>
{{if not .Detecting}}<p id="off">Detection is off on this collector (--detect-window 0).</p>
{{else if not .Suspects}}<p id="none">No suspect across the fleet.</p>
{{else}}<p>{{len .Suspects}} suspect(s); JSON with <code>Accept: application/json</code>.</p>
<table id="suspects">
<tr><th>target</th><th>function</th><th>kind</th><th>confidence</th><th>growth</th><th>trend over the window</th><th>first seen</th><th></th></tr>
{{range .Suspects}}<tr class="suspect" data-target="{{.Target}}" data-function="{{.Function}}">
<td>{{.Target}}{{if .Service}}<br><small>{{.Service}}</small>{{end}}</td>
<td><code>{{.Function}}</code></td>
<td>{{.Kind}}</td>
<td class="{{.Confidence}}">{{.Confidence}}</td>
<td>{{growth .GrowthPerMinute .Unit}}</td>
<td><svg class="trend" width="{{w}}" height="{{h}}" viewBox="0 0 {{w}} {{h}}" role="img" aria-label="{{.Kind}} of {{.Function}} over the window"><polyline fill="none" stroke="#c00" stroke-width="1.5" points="{{chart .Points}}"/></svg></td>
<td>{{since .FirstSeen}} ago</td>
<td>{{if and $.Store .BaseID .CurrentID}}<a class="diff" href="{{diff .}}">pprof diff</a><br><small><code>leaklab diff {{.BaseID}} {{.CurrentID}}</code></small>{{end}}</td>
</tr>
{{end}}</table>{{end}}
</body></html>
`))

func writeSuspectsHTML(w io.Writer, sus []Suspect, detecting, store bool) error {
	return suspectsPage.Execute(w, struct {
		Suspects  []Suspect
		Detecting bool
		Store     bool
	}{sus, detecting, store})
}

func formatGrowth(v float64, unit string) string {
	if unit == "bytes" {
		sign := ""
		if v < 0 {
			sign, v = "-", -v
		}
		return sign + bytesize.Format(int64(v)) + "/min"
	}
	return fmt.Sprintf("%.1f %s/min", v, unit)
}

// trendPolyline scales points to the chart: time across, value up.
func trendPolyline(pts []TimedPoint) string {
	if len(pts) == 0 {
		return ""
	}
	t0, t1 := pts[0].Time, pts[len(pts)-1].Time
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
	}
	span, rng := t1.Sub(t0).Seconds(), hi-lo
	var b strings.Builder
	for i, p := range pts {
		x, y := float64(chartPad), float64(chartHeight)/2
		if span > 0 {
			x += p.Time.Sub(t0).Seconds() / span * (chartWidth - 2*chartPad)
		}
		if rng > 0 {
			y = chartHeight - chartPad - (p.Value-lo)/rng*(chartHeight-2*chartPad)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", x, y)
	}
	return b.String()
}
