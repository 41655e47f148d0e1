package compliance

import (
	"fmt"
	"html"
	"strings"
	"time"
)

// chart is one SVG chart: values over the report's period, against an objective line.
type chart struct {
	title     string
	points    []Point
	objective float64 // 0: no line
	label     string  // what the objective line is called
	format    func(float64) string
}

const (
	chartW, chartH             = 720.0, 230.0
	padL, padR, padT, padB     = 70.0, 20.0, 30.0, 30.0
	plotW, plotH               = chartW - padL - padR, chartH - padT - padB
	colourPass, colourFail     = "#1a7f37", "#cf222e"
	colourError, colourNeutral = "#9a6700", "#0969da"
)

// svg draws the chart. Every text it writes is escaped: target names and messages come from
// configuration and from the databases checked.
func (c chart) svg(from, to time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, chartW, chartH, html.EscapeString(c.title))
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(c.title))
	fmt.Fprintf(&b, `<text x="%.0f" y="18" class="ct">%s</text>`, padL, html.EscapeString(c.title))
	top := c.objective
	for _, p := range c.points {
		top = max(top, p.Value)
	}
	if top <= 0 {
		top = 1
	}
	top *= 1.15
	span := to.Sub(from).Seconds()
	x := func(t time.Time) float64 { return padL + plotW*max(0, min(1, t.Sub(from).Seconds()/span)) }
	y := func(v float64) float64 { return padT + plotH*(1-v/top) }
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="#fff" stroke="#d0d7de"/>`, padL, padT, plotW, plotH)
	for _, f := range []float64{0, 0.5, 1} {
		v := top / 1.15 * f
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eaeef2"/><text x="%.1f" y="%.1f" class="ax" text-anchor="end">%s</text>`,
			padL, padL+plotW, y(v), y(v), padL-6, y(v)+4, html.EscapeString(c.format(v)))
	}
	for _, t := range ticks(from, to) {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="ax" text-anchor="middle">%s</text>`, x(t), chartH-10, t.Format(tickFormat(from, to)))
	}
	if c.objective > 0 {
		fmt.Fprintf(&b, `<line class="objective" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6 4"/><text x="%.1f" y="%.1f" class="ax" fill="%s" text-anchor="end">%s %s</text>`,
			padL, padL+plotW, y(c.objective), y(c.objective), colourFail, padL+plotW-4, y(c.objective)-5, colourFail, html.EscapeString(c.label), html.EscapeString(c.format(c.objective)))
	}
	if len(c.points) == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="ax" text-anchor="middle">no data in the period</text>`, padL+plotW/2, padT+plotH/2)
	}
	if len(c.points) > 1 {
		pts := make([]string, len(c.points))
		for i, p := range c.points {
			pts[i] = fmt.Sprintf("%.1f,%.1f", x(p.At), y(p.Value))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, colourNeutral, strings.Join(pts, " "))
	}
	for _, p := range c.points {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s: %s</title></circle>`,
			x(p.At), y(p.Value), colourOf(p.Status), stamp(p.At), html.EscapeString(c.format(p.Value)))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func colourOf(status string) string {
	switch status {
	case "pass":
		return colourPass
	case "fail":
		return colourFail
	case "error":
		return colourError
	}
	return colourNeutral
}

// ticks are the first days of months (every few months over a long period) in [from, to).
func ticks(from, to time.Time) []time.Time {
	months := int(to.Sub(from).Hours() / 24 / 30)
	step := max(1, months/12+btoi(months%12 != 0 && months > 12))
	var out []time.Time
	m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
	if m.Before(from) {
		m = m.AddDate(0, 1, 0)
	}
	for ; m.Before(to); m = m.AddDate(0, step, 0) {
		out = append(out, m)
	}
	if len(out) < 2 {
		return []time.Time{from, to}
	}
	return out
}

func tickFormat(from, to time.Time) string {
	if to.Sub(from) < 62*24*time.Hour {
		return "Jan 2"
	}
	if from.Year() == to.Add(-time.Second).Year() {
		return "Jan"
	}
	return "Jan 06"
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func bytesLabel(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v >= 10 || i == 0 {
		return fmt.Sprintf("%.0f %s", v, units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
