// Package render turns results into what people and machines read: terminal tables
// (tablewriter) and JSON.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// Format is an output format.
type Format string

// Output formats every command that prints results accepts.
const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
)

// ParseFormat validates an --output value.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case FormatTable, FormatJSON:
		return Format(s), nil
	}
	return "", fmt.Errorf("unknown output format %q (use table or json)", s)
}

// JSON writes v as indented JSON.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Drill writes a drill result for people: a summary, the phases, and the checks.
func Drill(w io.Writer, r *reports.DrillResult) error {
	snap := "(none)"
	if r.Snapshot != nil {
		snap = fmt.Sprintf("%s (taken %s, %s old)", r.Snapshot.ID, r.Snapshot.TakenAt.Format(time.RFC3339), Dur(r.Snapshot.AgeSeconds))
	}
	rp := "unknown"
	if r.RecoveryPoint != nil {
		rp = r.RecoveryPoint.Format(time.RFC3339) + " (from " + r.RecoveryPointSource + ")"
	}
	rto := fmt.Sprintf("%s of %s (met)", Dur(r.RTO.ActualSeconds), Dur(r.RTO.TargetSeconds))
	switch {
	case r.RTO.ActualSeconds == 0:
		rto = fmt.Sprintf("not measured: the drill did not reach \"verified and usable\" (target %s)", Dur(r.RTO.TargetSeconds))
	case !r.RTO.Met:
		rto = fmt.Sprintf("%s of %s (MISSED)", Dur(r.RTO.ActualSeconds), Dur(r.RTO.TargetSeconds))
	}
	wrapped(w, "", "  ", fmt.Sprintf("Drill %s of target %q: %s", r.ID, r.Target, strings.ToUpper(string(r.Status))))
	field(w, "snapshot", snap)
	field(w, "RTO", rto)
	field(w, "recovery point", rp)
	if r.Error != "" {
		field(w, "error", r.Error)
	}
	if r.Runtime != nil && r.Runtime.Pod != "" {
		field(w, "pod", r.Runtime.Namespace+"/"+r.Runtime.Pod)
	}
	if v := r.Verification; v != nil && v.Mode == checks.AmcheckIncremental {
		field(w, "verification", fmt.Sprintf("incremental: %d of %d data files changed since snapshot %s (full drill %s)", v.ChangedFiles, v.DataFiles, v.BaselineSnapshot, v.BaselineDrill))
	}
	for _, n := range r.Notes {
		field(w, "note", n)
	}
	leftoverNote(w, r)
	fmt.Fprintln(w)
	rows := make([][]string, 0, len(r.Phases))
	for _, p := range r.Phases {
		inRTO := "yes"
		if !p.CountsTowardRTO {
			inRTO = "no (after verification)"
		}
		if p.Concurrent {
			inRTO += " (ran concurrently)"
		}
		rows = append(rows, []string{p.Name, Dur(p.Seconds), inRTO})
	}
	if err := Table(w, []string{"PHASE", "TIME", "IN RTO"}, rows); err != nil {
		return err
	}
	if len(r.Checks) == 0 {
		return keptNote(w, r)
	}
	fmt.Fprintln(w)
	rows = rows[:0]
	for _, f := range r.Checks {
		rows = append(rows, []string{f.Check, strings.ToUpper(f.Status.String()), f.Message})
	}
	if err := Table(w, []string{"CHECK", "STATUS", "DETAIL"}, rows); err != nil {
		return err
	}
	return keptNote(w, r)
}

func keptNote(w io.Writer, r *reports.DrillResult) error {
	if r.Kept != nil {
		fmt.Fprintf(w, "\nKept (--keep): scratch %s", r.Kept.ScratchDir)
		if r.Kept.Connect != "" {
			fmt.Fprintf(w, "\n  connect:  psql %q", r.Kept.Connect)
		}
		if r.Kept.PID != 0 {
			fmt.Fprintf(w, "\n  server:   pid %d, log %s (stop it with: kill -INT %d)", r.Kept.PID, r.Kept.ServerLog, r.Kept.PID)
		}
		for _, o := range r.Kept.Objects {
			fmt.Fprintf(w, "\n  left in the cluster: %s", o)
		}
		fmt.Fprintf(w, "\n  remove it when done: rm -rf %s", r.Kept.ScratchDir)
		if len(r.Kept.Objects) > 0 {
			fmt.Fprintf(w, " and firedrill gc --include-kept")
		}
		fmt.Fprintln(w)
	}
	return nil
}

// Snapshots writes a list of snapshots, newest first.
func Snapshots(w io.Writer, snaps []reports.SnapshotMetadata, now time.Time) error {
	rows := make([][]string, 0, len(snaps))
	// A STATUS column only when some snapshot is damaged or foreign (their reasons follow).
	withStatus := anyUnrestorable(snaps)
	for _, s := range snaps {
		row := []string{s.ID, Timestamp(w, s.TakenAt), Dur(now.Sub(s.TakenAt).Seconds()),
			s.Mode, s.EngineVersion, reports.HumanBytes(s.SizeBytes), fmt.Sprint(s.Files), Dur(s.FrozenSeconds)}
		if !s.Restorable() {
			row = []string{s.ID, Timestamp(w, s.TakenAt), Dur(now.Sub(s.TakenAt).Seconds()), "-", "-", "-", "-", "-"}
		}
		if withStatus {
			row = append(row, snapshotStatus(s))
		}
		rows = append(rows, row)
	}
	cols := Columns("ID", "TAKEN AT", "AGE", "MODE", "VERSION", "SIZE", "FILES", "BACKUP MODE")
	if withStatus {
		cols = append(cols, Columns("STATUS")...)
	}
	cols[0].Shrink = Middle
	if err := Fit(w, cols, rows); err != nil {
		return err
	}
	unrestorableNote(w, snaps)
	return nil
}

// Findings writes findings as a table.
func Findings(w io.Writer, fs []checks.Finding) error {
	rows := make([][]string, 0, len(fs))
	for _, f := range fs {
		rows = append(rows, []string{f.Check, strings.ToUpper(f.Status.String()), f.Message})
	}
	return Table(w, []string{"CHECK", "STATUS", "DETAIL"}, rows)
}

// Dur formats seconds for people: 850ms, 12.3s, 4m05s, 2h03m, 3d04h.
func Dur(sec float64) string {
	if sec < 0 {
		return "-" + Dur(-sec)
	}
	d := time.Duration(sec * float64(time.Second))
	if d >= time.Second {
		// Round first, so that 59.96s reads 1m00s rather than 60.0s.
		d = d.Round(100 * time.Millisecond)
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
