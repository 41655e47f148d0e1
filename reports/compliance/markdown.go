package compliance

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// mdCell makes text safe in a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\\", "\\\\")
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", "<br>")
}

func mdTable(w io.Writer, header []string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(header)))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = mdCell(c)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}

// Markdown writes the report for pasting into a ticket.
func Markdown(out io.Writer, r *Report) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "# %s\n\n", r.Title)
	fmt.Fprintf(w, "Period: %s to %s (end exclusive) · generated %s · report digest `sha256:%s`\n\n", day(r.From), day(r.To), stamp(r.GeneratedAt), r.Digest)
	fmt.Fprintf(w, "> %s\n\n", r.Statement)
	for _, t := range r.Targets {
		mdTarget(w, t)
	}
	fmt.Fprintf(w, "## Control mapping\n\n")
	rows := make([][]string, 0, len(r.Controls))
	for _, c := range r.Controls {
		rows = append(rows, []string{c.Framework, c.Control, c.Requirement, c.Evidence, fmt.Sprint(c.Records)})
	}
	mdTable(w, []string{"Framework", "Control", "What it asks", "Evidence in this report", "Records"}, rows)
	fmt.Fprintf(w, "## Provenance\n\n")
	if !r.Verified {
		fmt.Fprintf(w, "The evidence store was not verified for this report: signatures and chains are unchecked.\n\n")
	}
	rows = rows[:0]
	for _, p := range r.Provenance {
		rows = append(rows, []string{p.Target, fmt.Sprint(p.Seq), p.Kind, p.ID, stamp(p.At), p.Status, "`" + shortDigest(p.Digest) + "`", p.Signature, p.Chain + problem(p.Problem)})
	}
	mdTable(w, []string{"Target", "Seq", "Kind", "ID", "At", "Status", "Digest", "Signature", "Chain"}, rows)
	if err := w.Flush(); err != nil {
		return fmt.Errorf("while writing the report as Markdown: %w", err)
	}
	return nil
}

func problem(p string) string {
	if p == "" {
		return ""
	}
	return ": " + p
}

func mdTarget(w io.Writer, t TargetReport) {
	s, o := t.Summary, t.Objectives
	fmt.Fprintf(w, "## %s", t.Name)
	if t.Engine != "" {
		fmt.Fprintf(w, " (%s)", t.Engine)
	}
	fmt.Fprintf(w, "\n\n")
	copyPolicy := o.CopyPolicy
	if copyPolicy == "" {
		copyPolicy = "not set"
	}
	mdTable(w, []string{"Objective", "Value"}, [][]string{
		{"RPO", objective(o.RPOSeconds)}, {"RTO", objective(o.RTOSeconds)},
		{"Drill every", objective(o.DrillEverySeconds)}, {"Copy policy", copyPolicy},
	})
	mdTable(w, []string{"Summary", "Value"}, [][]string{
		{"Drills performed / required", fmt.Sprintf("%d / %d", s.DrillsPerformed, s.DrillsRequired)},
		{"Windows without a drill", fmt.Sprintf("%d: %s", s.MissedWindows, noneOr(missedWindows(t)))},
		{"Months without a drill", noneOr(t.MonthsWithoutDrill)},
		{"Pass rate", fmt.Sprintf("%s (%d of %d)", percent(s.PassRate), s.DrillsPassed, s.DrillsPerformed)},
		{"RTO achieved", fmt.Sprintf("worst %s, median %s, objective missed %d times", human(s.WorstRTOSeconds), human(s.MedianRTOSeconds), s.RTOMissed)},
		{"RPO breaches", fmt.Sprintf("%d (longest %s) over %d audits", s.RPOBreaches, human(s.LongestRPOBreachSeconds), s.Audits)},
		{"WAL archiving incidents", fmt.Sprint(s.WALIncidents)},
		{"3-2-1 copies", copiesLine(t)},
		{"Open exceptions", fmt.Sprint(s.OpenExceptions)},
	})
	fmt.Fprintf(w, "### Drills\n\n")
	rows := [][]string{}
	for _, d := range t.Timeline {
		rows = append(rows, []string{stamp(d.StartedAt), d.ID, d.Status, rtoCell(d), d.Snapshot, fmt.Sprintf("#%d `%s`", d.Evidence.Seq, shortDigest(d.Evidence.Digest))})
	}
	mdTable(w, []string{"Started", "Drill", "Outcome", "RTO achieved / objective", "Snapshot", "Evidence"}, rows)
	if len(t.Failures) > 0 {
		fmt.Fprintf(w, "### Failures and remediation\n\n")
		for _, f := range t.Failures {
			fmt.Fprintf(w, "- **%s** %s (%s): next passing drill %s\n", stamp(f.Drill.StartedAt), f.Drill.ID, f.Drill.Status, remediation(f))
			if f.Error != "" {
				fmt.Fprintf(w, "  - error: %s\n", mdCell(f.Error))
			}
			for _, fd := range f.Findings {
				fmt.Fprintf(w, "  - %s %s: %s\n", fd.Check, fd.Status, mdCell(fd.Message))
			}
		}
		fmt.Fprintln(w)
	}
	for _, sec := range []struct {
		title string
		eps   []Episode
	}{{"RPO breaches", t.RPOBreaches}, {"WAL archiving incidents", t.WALIncidents}} {
		if len(sec.eps) == 0 {
			continue
		}
		fmt.Fprintf(w, "### %s\n\n", sec.title)
		rows := [][]string{}
		for _, e := range sec.eps {
			rows = append(rows, []string{episodeWhen(e), human(e.Seconds), e.Worst, fmt.Sprint(e.Audits), e.Message})
		}
		mdTable(w, []string{"When", "Lasted", "Worst", "Audits", "First finding"}, rows)
	}
}
