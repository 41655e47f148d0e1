package evidence

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/history"
)

// ImportDrillHistory appends the drill results kept by reports/history under historyDir for
// target to the target's chain, oldest first, skipping drills whose id is already chained, so
// that running it again imports nothing twice. It returns how many records it appended. Imported
// records say so in Where["importedFrom"]; their tool version and config digest are unknown.
func ImportDrillHistory(ctx context.Context, store Store, historyDir, target string) (int, error) {
	results, err := history.New(historyDir).List(ctx, target)
	if err != nil {
		return 0, fmt.Errorf("while importing drill history of %s: %w", target, err)
	}
	chained, err := store.List(ctx, target)
	if err != nil {
		return 0, fmt.Errorf("while importing drill history of %s: %w", target, err)
	}
	seen := map[string]bool{}
	for _, s := range chained {
		if s.Record.Kind == KindDrill {
			seen[s.Record.ID] = true
		}
	}
	slices.Reverse(results) // history lists newest first
	n := 0
	for i := range results {
		d := &results[i]
		if seen[d.ID] {
			continue
		}
		r := DrillRecord(d)
		r.Where = map[string]string{"importedFrom": filepath.Join(historyDir, target)}
		if _, err := store.Append(ctx, &r); err != nil {
			return n, fmt.Errorf("while importing drill %s of %s: %w", d.ID, target, err)
		}
		seen[d.ID] = true
		n++
	}
	return n, nil
}

// DrillRecord is the record of a drill result; the caller adds Where, ToolVersion, ConfigDigest
// and the objectives it knows beyond the RTO.
func DrillRecord(d *reports.DrillResult) Record {
	st := StatusError
	switch d.Status {
	case reports.StatusPass:
		st = StatusPass
	case reports.StatusFail:
		st = StatusFail
	}
	return Record{
		SchemaVersion: SchemaVersion,
		Kind:          KindDrill,
		ID:            d.ID,
		Target:        d.Target,
		StartedAt:     d.StartedAt,
		FinishedAt:    d.FinishedAt,
		Status:        st,
		Objectives:    Objectives{RTOSeconds: d.RTO.TargetSeconds},
		Drill:         d,
	}
}
