package compliance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Format is an output format of the report.
type Format string

// Formats of the report.
const (
	FormatJSON     Format = "json"
	FormatMarkdown Format = "md"
	FormatHTML     Format = "html"
	FormatTable    Format = "table"
	FormatPDF      Format = "pdf"
)

// ParseFormat reads a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatJSON, FormatMarkdown, FormatHTML, FormatTable, FormatPDF:
		return f, nil
	case "markdown":
		return FormatMarkdown, nil
	}
	return "", fmt.Errorf("unknown report format %q (use html, pdf, md, json or table)", s)
}

// Write renders r in format f to w. PDF is rendered by headless Chromium (see PDF).
func Write(ctx context.Context, w io.Writer, r *Report, f Format) error {
	switch f {
	case FormatJSON:
		return JSON(w, r)
	case FormatMarkdown:
		return Markdown(w, r)
	case FormatHTML:
		return HTML(w, r)
	case FormatTable:
		return Table(w, r)
	case FormatPDF:
		return PDF(ctx, w, r)
	}
	return fmt.Errorf("unknown report format %q", f)
}

// JSON writes the report as indented JSON.
func JSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("while writing the report as JSON: %w", err)
	}
	return nil
}

// human writes a number of seconds as a short duration: 45s, 12m30s, 3h05m, 2d4h.
func human(sec float64) string {
	if sec <= 0 {
		return "0s"
	}
	d := time.Duration(math.Round(sec)) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		m, s := int(d.Minutes()), int(d.Seconds())%60
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%02ds", m, s)
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	days, h := int(d.Hours())/24, int(d.Hours())%24
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

// objective writes an objective, or "not set".
func objective(sec float64) string {
	if sec <= 0 {
		return "not set"
	}
	return human(sec)
}

func percent(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") }

// rtoCell is "12m30s / 1h" with "(missed)" when the objective was not met.
func rtoCell(d DrillEntry) string {
	if d.RTOSeconds <= 0 {
		return "not measured"
	}
	s := human(d.RTOSeconds) + " / " + objective(d.RTOTargetSeconds)
	if !d.RTOMet {
		s += " (missed)"
	}
	return s
}

func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// missedWindows lists the windows that ended with no drill, as "2026-07-02 – 2026-08-02".
func missedWindows(t TargetReport) []string {
	var out []string
	for _, w := range t.Windows {
		if w.Missed {
			out = append(out, day(w.From)+" – "+day(w.To.Add(-time.Second)))
		}
	}
	return out
}

func noneOr(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// remediation is "2026-03-22 (7d)" or "open".
func remediation(f Failure) string {
	if f.NextPass == nil {
		return "open: no passing drill since"
	}
	return fmt.Sprintf("%s (%s later)", stamp(f.NextPass.FinishedAt), human(f.RemediationSeconds))
}

func episodeWhen(e Episode) string {
	end := stamp(e.To)
	if e.Ongoing {
		end += ", ongoing"
	}
	return fmt.Sprintf("%s – %s", stamp(e.From), end)
}

// copiesLine is the 3-2-1 status over time, one stretch after the other.
func copiesLine(t TargetReport) string {
	if len(t.Copies) == 0 {
		return "not checked in the period"
	}
	parts := make([]string, len(t.Copies))
	for i, c := range t.Copies {
		parts[i] = fmt.Sprintf("%s from %s (%s)", c.Status, day(c.From), plural(c.Audits, "audit"))
	}
	return strings.Join(parts, "; ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
