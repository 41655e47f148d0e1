package compliance

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
)

//go:embed report.html.tmpl
var htmlSource string

// The page is self-contained: its CSS is inline, its charts are SVG drawn here, it runs no
// script and fetches nothing, so that it opens the same offline, in an archive, years later.
var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"human": human, "objective": objective, "percent": percent, "day": day, "stamp": stamp,
	"rto": rtoCell, "short": shortDigest, "missed": missedWindows, "none": noneOr,
	"remediation": remediation, "when": episodeWhen, "copies": copiesLine,
	"charts": func(r *Report, t TargetReport) []template.HTML {
		cs := []chart{
			{title: "RTO achieved per drill, against the objective", points: t.Charts.RTOSeconds, objective: t.Objectives.RTOSeconds, label: "RTO", format: human},
			{title: "Backup age at each audit, against the RPO", points: t.Charts.BackupAgeSeconds, objective: t.Objectives.RPOSeconds, label: "RPO", format: human},
			{title: "Backup size", points: t.Charts.BackupSizeBytes, format: bytesLabel},
		}
		out := make([]template.HTML, len(cs))
		for i, c := range cs {
			out[i] = template.HTML(c.svg(r.From, r.To)) // #nosec: built by svg, every text escaped
		}
		return out
	},
}).Parse(htmlSource))

// HTML writes the report as one self-contained HTML page that prints cleanly.
func HTML(w io.Writer, r *Report) error {
	if err := htmlPage.Execute(w, r); err != nil {
		return fmt.Errorf("while writing the report as HTML: %w", err)
	}
	return nil
}
