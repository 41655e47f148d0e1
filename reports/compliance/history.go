package compliance

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/evidence"
	"github.com/firedrill/firedrill/reports/render"
)

// HistoryEntry is one past drill, as 'firedrill history' lists it.
type HistoryEntry struct {
	Target           string    `json:"target"`
	ID               string    `json:"id"`
	StartedAt        time.Time `json:"startedAt"`
	Status           string    `json:"status"`
	RTOSeconds       float64   `json:"rtoSeconds"`
	RTOTargetSeconds float64   `json:"rtoTargetSeconds"`
	RTOMet           bool      `json:"rtoMet"`
	// Source is "evidence" (a chained evidence record) or "history" (a drill result of the
	// history directory that no evidence record holds).
	Source string `json:"source"`
	Path   string `json:"path,omitempty"`
}

// FromEvidence lists the drills among a target's evidence records, oldest first.
func FromEvidence(rs []Stored) []HistoryEntry {
	var out []HistoryEntry
	for _, s := range rs {
		if s.Record.Kind != evidence.KindDrill {
			continue
		}
		e := entry(s, s.Record.Objectives.RTOSeconds)
		out = append(out, HistoryEntry{Target: s.Record.Target, ID: e.ID, StartedAt: e.StartedAt, Status: e.Status,
			RTOSeconds: e.RTOSeconds, RTOTargetSeconds: e.RTOTargetSeconds, RTOMet: e.RTOMet, Source: "evidence", Path: s.Path})
	}
	return out
}

// FromResults lists drill results (reports/history's, any order), oldest first.
func FromResults(rs []reports.DrillResult) []HistoryEntry {
	out := make([]HistoryEntry, 0, len(rs))
	for _, d := range rs {
		out = append(out, HistoryEntry{Target: d.Target, ID: d.ID, StartedAt: d.StartedAt.UTC(), Status: string(d.Status),
			RTOSeconds: d.RTO.ActualSeconds, RTOTargetSeconds: d.RTO.TargetSeconds, RTOMet: d.RTO.Met, Source: "history"})
	}
	slices.SortStableFunc(out, func(a, b HistoryEntry) int { return a.StartedAt.Compare(b.StartedAt) })
	return out
}

// sparks are the eight heights of a sparkline.
var sparks = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws values as bars scaled from zero to the largest of them (and of ceiling, when
// it is larger: an RTO objective, so that a trend well within it stays low). A value of zero or
// less is a space: nothing was measured.
func Sparkline(values []float64, ceiling float64) string {
	top := ceiling
	for _, v := range values {
		top = max(top, v)
	}
	var b strings.Builder
	for _, v := range values {
		if v <= 0 || top <= 0 {
			b.WriteRune(' ')
			continue
		}
		i := int(math.Ceil(v/top*float64(len(sparks)))) - 1
		b.WriteRune(sparks[max(0, min(len(sparks)-1, i))])
	}
	return b.String()
}

// WriteHistory writes each target's drills, oldest first, with the RTO trend under them.
func WriteHistory(w io.Writer, byTarget [][]HistoryEntry) error {
	for i, es := range byTarget {
		if len(es) == 0 {
			continue
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		rows := make([][]string, 0, len(es))
		rtos := make([]float64, 0, len(es))
		target := 0.0
		for _, e := range es {
			d := DrillEntry{RTOSeconds: e.RTOSeconds, RTOTargetSeconds: e.RTOTargetSeconds, RTOMet: e.RTOMet}
			rows = append(rows, []string{e.Target, render.Timestamp(w, e.StartedAt), e.ID, e.Status, rtoCell(d)})
			rtos = append(rtos, e.RTOSeconds)
			target = max(target, e.RTOTargetSeconds)
		}
		cols := render.Columns("TARGET", "STARTED", "DRILL", "STATUS", "RTO / OBJECTIVE")
		cols[2].Shrink = render.Middle
		if err := render.Fit(w, cols, rows); err != nil {
			return fmt.Errorf("while writing the drill history: %w", err)
		}
		passed := 0
		for _, e := range es {
			if e.Status == evidence.StatusPass {
				passed++
			}
		}
		// The trend is scaled to the slowest drill, so that it shows; the figures give the scale.
		fmt.Fprintf(w, "%s RTO trend, oldest to newest: %s  (slowest %s, objective %s; %d of %d drills passed; from %s)\n",
			es[0].Target, Sparkline(rtos, 0), human(slices.Max(rtos)), objective(target), passed, len(es), es[0].Source)
	}
	return nil
}
