package compliance

import (
	"fmt"
	"io"

	"github.com/firedrill/firedrill/reports/render"
)

// Table writes the report for a terminal: a summary per target, then every drill.
func Table(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "%s\n%s\n\n", r.Title, r.Statement)
	cols := render.Columns("TARGET", "DRILLS", "PASS RATE", "RTO WORST/MEDIAN", "RPO BREACHES", "WAL INCIDENTS", "3-2-1", "OPEN", "MISSED")
	rows := make([][]string, 0, len(r.Targets))
	for _, t := range r.Targets {
		s := t.Summary
		cp := s.CopiesStatus
		if cp == "" {
			cp = "-"
		}
		rows = append(rows, []string{t.Name, fmt.Sprintf("%d/%d", s.DrillsPerformed, s.DrillsRequired), percent(s.PassRate),
			human(s.WorstRTOSeconds) + " / " + human(s.MedianRTOSeconds), fmt.Sprintf("%d (longest %s)", s.RPOBreaches, human(s.LongestRPOBreachSeconds)),
			fmt.Sprint(s.WALIncidents), cp, fmt.Sprint(s.OpenExceptions), fmt.Sprintf("%d (months: %s)", s.MissedWindows, noneOr(t.MonthsWithoutDrill))})
	}
	if err := render.Fit(w, cols, rows); err != nil {
		return fmt.Errorf("while writing the report table: %w", err)
	}
	fmt.Fprintln(w)
	cols = render.Columns("TARGET", "STARTED", "DRILL", "STATUS", "RTO / OBJECTIVE", "REMEDIATED", "EVIDENCE")
	cols[2].Shrink, cols[6].Shrink = render.Middle, render.Middle
	rows = rows[:0]
	for _, t := range r.Targets {
		fixed := map[string]string{}
		for _, f := range t.Failures {
			fixed[f.Drill.ID] = remediation(f)
		}
		for _, d := range t.Timeline {
			rows = append(rows, []string{t.Name, render.Timestamp(w, d.StartedAt), d.ID, d.Status, rtoCell(d), fixed[d.ID], d.Evidence.Path})
		}
	}
	if err := render.Fit(w, cols, rows); err != nil {
		return fmt.Errorf("while writing the drill table: %w", err)
	}
	fmt.Fprintf(w, "\nreport digest sha256:%s\n", r.Digest)
	return nil
}
