package render

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/firedrill/firedrill/reports"
)

// SnapshotResults writes what 'firedrill snapshot' did: one row per target (its snapshot, or
// ERROR), then each failure in full and what retention deleted and why.
func SnapshotResults(w io.Writer, results []reports.SnapshotResult, now time.Time) error {
	rows := make([][]string, 0, len(results))
	for _, r := range results {
		if r.Snapshot == nil {
			rows = append(rows, []string{r.Target, strings.ToUpper(r.Status), "-", "-", "-", "-", "-", "see below"})
			continue
		}
		s := r.Snapshot
		ret := "no rules"
		if r.Retention != nil {
			ret = fmt.Sprintf("kept %d, deleted %d", r.Retention.Kept, len(r.Retention.Deleted))
			if r.Retention.Error != "" {
				ret += ", FAILED"
			}
		}
		rows = append(rows, []string{r.Target, strings.ToUpper(r.Status), s.ID, Timestamp(w, s.TakenAt),
			reports.HumanBytes(s.SizeBytes), fmt.Sprint(s.Files), Dur(s.FrozenSeconds), ret})
	}
	cols := Columns("TARGET", "STATUS", "ID", "TAKEN AT", "SIZE", "FILES", "BACKUP MODE", "RETENTION")
	cols[2].Shrink = Middle
	if err := Fit(w, cols, rows); err != nil {
		return err
	}
	for _, r := range results {
		if r.Snapshot == nil {
			fmt.Fprintln(w)
			wrapped(w, r.Target+": ", "  ", oneLine(r.Error))
		}
	}
	for _, r := range results {
		if r.Retention != nil {
			RetentionNote(w, r.Target, r.Retention)
		}
	}
	return nil
}

// RetentionNote writes what a target's retention rules deleted after a snapshot, and why.
func RetentionNote(w io.Writer, target string, r *reports.SnapshotRetention) {
	fmt.Fprintln(w)
	if len(r.Deleted) == 0 {
		fmt.Fprintf(w, "Retention of %s (%s): kept %d, deleted nothing.\n", target, r.Rules, r.Kept)
	} else {
		fmt.Fprintf(w, "Retention of %s (%s): kept %d, deleted %d:\n", target, r.Rules, r.Kept, len(r.Deleted))
		for _, d := range r.Deleted {
			wrapped(w, "  ", "    ", fmt.Sprintf("%s (taken %s): %s", d.ID, Timestamp(w, d.TakenAt), d.Reason))
		}
	}
	if r.Error != "" {
		wrapped(w, "  failed: ", "    ", oneLine(r.Error))
	}
}

// unrestorableNote lists the damaged and foreign snapshots of a listing, each with its reason.
func unrestorableNote(w io.Writer, snaps []reports.SnapshotMetadata) {
	first := true
	for _, s := range snaps {
		if s.Restorable() {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nNot restorable (never restored or counted as a backup; retention keeps them: look, then remove them by hand):")
			first = false
		}
		wrapped(w, "  ", "    ", fmt.Sprintf("%s %s: %s", s.ID, strings.ToUpper(s.Status), oneLine(s.Reason)))
	}
}

func anyUnrestorable(snaps []reports.SnapshotMetadata) bool {
	for _, s := range snaps {
		if !s.Restorable() {
			return true
		}
	}
	return false
}

// snapshotStatus is a listed snapshot's status for a table: COMPLETE, DAMAGED or FOREIGN.
func snapshotStatus(s reports.SnapshotMetadata) string {
	if s.Status == "" {
		return strings.ToUpper(reports.SnapshotStatusComplete)
	}
	return strings.ToUpper(s.Status)
}
