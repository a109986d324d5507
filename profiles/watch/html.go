package watch

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
)

// WriteHTML writes a self-contained report (no scripts, no external
// resources): the verdict and, for each suspect, an SVG chart of its
// series with the Theil–Sen trend line.
func WriteHTML(w io.Writer, r *Report) error {
	var text strings.Builder
	if err := WriteText(&text, r); err != nil {
		return err
	}
	type chart struct {
		Suspect
		SVG template.HTML
	}
	data := struct {
		R      *Report
		Charts []chart
		Text   string
	}{R: r, Text: text.String()}
	for i, s := range r.Suspects {
		s.Next = NextCommand(r, s)
		data.Charts = append(data.Charts, chart{Suspect: s, SVG: template.HTML(trendSVG(i, s))})
	}
	return reportTemplate.Execute(w, data)
}

var reportTemplate = template.Must(template.New("watch").Funcs(template.FuncMap{
	"value": formatValue, "p": formatP, "upper": strings.ToUpper,
	"percent": func(share float64) string { return fmt.Sprintf("%.0f%%", 100*share) },
	"signed":  signed, "bytes": func(n int64) float64 { return float64(n) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>leaklab watch: {{.R.Target}}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222;padding:0 1em}
h1{font-size:1.4em} h2{font-size:1.1em;margin:1.6em 0 .3em;word-break:break-all}
.badge{display:inline-block;padding:0 .5em;border-radius:3px;color:#fff;font-size:.8em;margin-right:.4em}
.proven{background:#8e24aa}.likely{background:#c62828}.possible{background:#ef6c00}
.meta{color:#555} code,pre{font:13px ui-monospace,monospace} pre{background:#f5f5f5;padding:.8em;overflow-x:auto}
svg.trend{width:100%;height:auto;border:1px solid #ddd;background:#fff}
.chain{font-size:.9em;margin:.2em 0 .8em} .none{padding:1em;background:#e8f5e9;border-left:4px solid #2e7d32}
</style></head><body>
<h1>leaklab watch: {{.R.Target}}</h1>
<p class="meta">{{.R.Snapshots}} snapshots from {{.R.Started.Format "2006-01-02 15:04:05"}} to {{.R.Ended.Format "15:04:05"}} UTC, every {{.R.Every}}s.
{{if .R.Incomplete}}<br><strong>The watch ended early:</strong> {{.R.Incomplete}}.{{end}}</p>
{{if not .Charts}}<p class="none" id="verdict">No suspects: no allocation site or goroutine group kept growing.</p>{{end}}
{{range .Charts}}
<section class="suspect">
<h2><span class="badge {{.Confidence}}">{{upper .Confidence}}</span>{{.Kind}}: <code>{{.Function}}</code>{{if .WaitState}} [{{.WaitState}}]{{end}}</h2>
<p>Grows {{value .GrowthPerMinute .Unit true}} per minute: {{value .Evidence.First .Unit false}} → {{value .Evidence.Last .Unit false}} over {{.Evidence.N}} snapshots (Mann–Kendall p={{p .Evidence.P}}, second half p={{p .Evidence.LateP}}).
{{with .Evidence.Turnover}}Goroutine IDs: {{.Arrived}} arrived and stayed, {{.Departed}} of those there at the start left (p={{p .P}} for a steady site).{{end}}
{{if .SameLeakAs}}Grows in lockstep with <code>{{.SameLeakAs}}</code> above: most likely the same leak.{{end}}
{{if .ProvenLeaked}}The runtime's goroutineleak profile proves {{.ProvenLeaked}} of these goroutines leaked.{{end}}</p>
{{if .Connections}}<p>These are HTTP client connections held open (goroutines in <code>{{.Connections}}</code>, no own code on their stack), most often by a response body that is never closed. Own code sending HTTP requests, by the heap profile:</p>
<ul>{{range .HTTPCallers}}<li><code>{{.Function}}</code>: {{percent .Share}}</li>{{end}}</ul>{{end}}
{{with .Retainer}}<p>Held by: {{signed .ObjectsGrowth}} objects, {{value (bytes .BytesGrowth) "bytes" true}} growth ({{if eq .Attribution "allocation"}}this chain holds objects the heap profile sampled under this suspect{{else}}not attributed: the chain that grew most overall{{end}}), root first:</p>
<ol class="chain">{{range .Chain}}<li><code>{{.}}</code></li>{{end}}</ol>{{end}}
{{.SVG}}
{{if .Next}}<p>Next: <code>{{.Next}}</code></p>{{end}}
<details><summary>Stack (leaf first)</summary><pre>{{range .Stack}}{{.}}
{{end}}</pre></details>
</section>
{{end}}
<h2>Text report</h2>
<pre>{{.Text}}</pre>
</body></html>
`))

// trendSVG draws one suspect's series and its trend line.
func trendSVG(i int, s Suspect) string {
	const w, h, right, top, bottom = 900.0, 260.0, 20.0, 15.0, 35.0
	pts := s.Points
	if len(pts) == 0 {
		return ""
	}
	tMax, vMin, vMax := pts[len(pts)-1].T, math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		vMin, vMax = math.Min(vMin, p.V), math.Max(vMax, p.V)
	}
	vMin = math.Min(vMin, 0)
	if vMax == vMin {
		vMax = vMin + 1
	}
	if tMax <= 0 {
		tMax = 1
	}
	// The value axis' labels, and room for the longest of them at 12px
	// (about 7px a character): "1201 goroutines" did not fit in 90px.
	ticks := []float64{vMin, (vMin + vMax) / 2, vMax}
	labels := make([]string, len(ticks))
	left := 90.0
	for i, v := range ticks {
		labels[i] = formatValue(v, s.Unit, false)
		left = math.Max(left, 7.5*float64(len([]rune(labels[i])))+14)
	}
	x := func(t float64) float64 { return left + (w-left-right)*t/tMax }
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-(v-vMin)/(vMax-vMin)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="trend" id="chart-%d" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s over time">`, i, w, h, template.HTMLEscapeString(s.Function))
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`, left, top, left, h-bottom)
	for i, v := range ticks {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" text-anchor="end">%s</text>`, left-6, y(v)+4, template.HTMLEscapeString(labels[i]))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" text-anchor="middle">seconds since the watch started (0 – %.0f)</text>`, (left+w-right)/2, h-8, tMax)
	var poly strings.Builder
	for _, p := range pts {
		fmt.Fprintf(&poly, "%.1f,%.1f ", x(p.T), y(p.V))
	}
	fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="#1565c0" stroke-width="2" points="%s"/>`, strings.TrimSpace(poly.String()))
	for _, p := range pts {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#1565c0"/>`, x(p.T), y(p.V))
	}
	// The Theil–Sen line through the median point.
	slope := s.Evidence.SlopePerMinute / 60
	mt, mv := medianPoint(pts)
	y0, y1 := mv+slope*(0-mt), mv+slope*(tMax-mt)
	fmt.Fprintf(&b, `<line class="fit" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c62828" stroke-dasharray="6 4" stroke-width="1.5"/>`,
		x(0), y(math.Max(math.Min(y0, vMax), vMin)), x(tMax), y(math.Max(math.Min(y1, vMax), vMin)))
	b.WriteString(`</svg>`)
	return b.String()
}

func medianPoint(pts []Point) (float64, float64) {
	ts := make([]float64, len(pts))
	vs := make([]float64, len(pts))
	for i, p := range pts {
		ts[i], vs[i] = p.T, p.V
	}
	return median(ts), median(vs)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
