package scale

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
)

// WriteHTML writes a self-contained page (no scripts, no external files):
// inline SVG charts of requests/s and p99 per strategy, each bar the
// median with every run drawn as a dot, then the text report.
func (r *Report) WriteHTML(w io.Writer) error {
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		return err
	}
	rps := barChart{Title: "requests/s: bar = median, whisker = its confidence interval (level in the table), dot = one run", Unit: "req/s"}
	p99 := barChart{Title: "p99 latency: bar = median, dot = one run", Unit: "ms"}
	for _, s := range r.Results {
		var rpsRuns, p99Runs []float64
		for _, run := range r.Runs {
			if run.Strategy == s.Strategy {
				rpsRuns = append(rpsRuns, run.RPS)
				p99Runs = append(p99Runs, run.P99*1000)
			}
		}
		label := fmt.Sprintf("%s (%d×%d)", s.Strategy, s.Workers, s.GOMAXPROCS)
		rps.add(label, s.RPSMedian, s.RPSCILow, s.RPSCIHigh, rpsRuns)
		p99.add(label, s.P99SecondsMedian*1000, math.NaN(), math.NaN(), p99Runs)
	}
	return htmlPage.Execute(w, map[string]any{
		"Report": r, "Text": text.String(),
		"Charts": []template.HTML{rps.svg(), p99.svg()},
	})
}

type barChart struct {
	Title, Unit string
	bars        []bar
}

type bar struct {
	label         string
	value, lo, hi float64
	runs          []float64
}

func (c *barChart) add(label string, value, lo, hi float64, runs []float64) {
	c.bars = append(c.bars, bar{label, value, lo, hi, runs})
}

// svg draws horizontal bars; the scale starts at zero so that bar lengths
// compare honestly.
func (c *barChart) svg() template.HTML {
	const (
		width, left, right, rowH, margin = 760.0, 190.0, 90.0, 34.0, 30.0
	)
	height := margin + rowH*float64(len(c.bars)) + 24
	top := 0.0
	for _, b := range c.bars {
		top = finiteMax(top, b.value, b.hi, finiteMax(b.runs...))
	}
	if top <= 0 {
		top = 1
	}
	x := func(v float64) float64 { return left + (width-left-right)*v/(top*1.05) }
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="13">`, width, height)
	fmt.Fprintf(&b, `<text x="0" y="16" font-weight="bold">%s</text>`, template.HTMLEscapeString(c.Title))
	for i, br := range c.bars {
		y := margin + rowH*float64(i)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`, left-8, y+rowH/2+4, template.HTMLEscapeString(br.label))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#7aa6d6"/>`, left, y+6, x(br.value)-left, rowH-12)
		if !math.IsNaN(br.lo) && !math.IsNaN(br.hi) {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222" stroke-width="1.5"/>`, x(br.lo), x(br.hi), y+rowH/2, y+rowH/2)
			for _, v := range []float64{br.lo, br.hi} {
				fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222" stroke-width="1.5"/>`, x(v), x(v), y+10, y+rowH-10)
			}
		}
		for _, v := range br.runs {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#c0392b" fill-opacity="0.7"/>`, x(v), y+rowH/2)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%.4g %s</text>`, x(finiteMax(br.value, br.hi, finiteMax(br.runs...)))+6, y+rowH/2+4, br.value, c.Unit)
	}
	axisY := margin + rowH*float64(len(c.bars))
	fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#888"/>`, left, width-right, axisY, axisY)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" fill="#555">0</text>`, left, axisY+16)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// finiteMax is the largest of vs that is a number, 0 when none is.
func finiteMax(vs ...float64) float64 {
	m := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) && v > m {
			m = v
		}
	}
	return m
}

var htmlPage = template.Must(template.New("scale").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>leaklab scale: {{.Report.Target}}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
figure { margin: 1.5em 0; }
</style></head><body>
<h1>leaklab scale: {{.Report.Target}}</h1>
<p>GET {{.Report.Path}} with {{.Report.Connections}} connections; {{.Report.RunsPerStrategy}} interleaved runs per strategy.
Bars start at zero. The baseline is <b>{{.Report.Baseline}}</b>.</p>
{{range .Charts}}<figure>{{.}}</figure>
{{end}}<h2>Report</h2>
<pre>{{.Text}}</pre>
</body></html>
`))
