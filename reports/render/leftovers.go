package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/firedrill/firedrill/reports"
)

// Leftovers writes what 'firedrill gc' found in the scratch roots and what it did with each.
func Leftovers(w io.Writer, los []reports.Leftover) error {
	if len(los) == 0 {
		_, err := fmt.Fprintln(w, "No drill scratch directories found: nothing to remove.")
		return err
	}
	rows := make([][]string, 0, len(los))
	for _, lo := range los {
		started := "unknown"
		if lo.StartedAt != nil {
			started = Timestamp(w, *lo.StartedAt)
		}
		detail := strings.Join(lo.Stopped, "; ")
		if lo.Error != "" {
			detail = strings.TrimPrefix(detail+"; "+lo.Error, "; ")
		}
		if lo.Recorded {
			detail = strings.TrimPrefix(detail+"; recorded as interrupted in the history", "; ")
		}
		// The drill id ends the scratch directory's name, which a narrow table shortens in the
		// middle: the id still shows.
		rows = append(rows, []string{lo.Target, strings.ToUpper(lo.State), strings.ToUpper(lo.Action),
			started, reports.HumanBytes(lo.Bytes), lo.ScratchDir, detail})
	}
	cols := Columns("TARGET", "STATE", "ACTION", "STARTED", "SIZE", "SCRATCH DIR", "DETAIL")
	cols[1].Shrink, cols[2].Shrink, cols[5].Shrink = Keep, Keep, Middle
	return Fit(w, cols, rows)
}

// LeftoverObject is one object of a runtime (a container, a Kubernetes object) that gc
// removed or, dry run, would remove.
type LeftoverObject struct {
	Runtime, Target, Object, Action string
}

// LeftoverObjects writes the runtimes' objects gc removed (or would remove); nothing when
// there are none.
func LeftoverObjects(w io.Writer, objs []LeftoverObject) error {
	if len(objs) == 0 {
		return nil
	}
	rows := make([][]string, 0, len(objs))
	for _, o := range objs {
		rows = append(rows, []string{o.Target, o.Runtime, strings.ToUpper(o.Action), o.Object})
	}
	cols := Columns("TARGET", "RUNTIME", "ACTION", "OBJECT")
	cols[1].Shrink, cols[2].Shrink = Keep, Keep
	return Fit(w, cols, rows)
}

// leftoverNote says what the drill removed before it started, and which kept throwaways of its
// target it left alone.
func leftoverNote(w io.Writer, r *reports.DrillResult) {
	for _, lo := range r.CleanedUp {
		line := fmt.Sprintf("%s of dead drill %s (%s)", lo.ScratchDir, lo.DrillID, reports.HumanBytes(lo.Bytes))
		if lo.StartedAt != nil {
			line += ", started " + Timestamp(w, *lo.StartedAt)
		}
		if lo.Action == reports.LeftoverFailed {
			field(w, "not removed", line+": "+lo.Error)
			continue
		}
		field(w, "cleaned up", line)
	}
	for _, lo := range r.KeptThrowaways {
		field(w, "kept throwaway", fmt.Sprintf("%s of drill %s left alone (firedrill gc --include-kept removes it)", lo.ScratchDir, lo.DrillID))
	}
}
