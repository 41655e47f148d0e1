package retention

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// Policy is a target's retention rules. A snapshot is kept when any rule keeps it; with no
// rule set, every snapshot is kept.
type Policy struct {
	KeepLast   int
	KeepWithin time.Duration
}

// Enabled reports whether any rule is set.
func (p Policy) Enabled() bool { return p.KeepLast > 0 || p.KeepWithin > 0 }

// Reasons a snapshot is kept or deleted.
const (
	ReasonNoPolicy   = "no retention rule"
	ReasonKeepLast   = "among the newest keepLast"
	ReasonKeepWithin = "younger than keepWithin"
	ReasonVerified   = "the only snapshot whose last drill passed"
	ReasonExpired    = "older than every rule keeps"
)

// Decision is what retention does with one snapshot.
type Decision struct {
	Snapshot snapshot.Metadata `json:"snapshot"`
	Keep     bool              `json:"keep"`
	Reason   string            `json:"reason"`
}

// Plan decides, newest first, which snapshots to keep. drills is the target's drill history
// (any order); a snapshot's last drill is the newest drill that restored it.
func Plan(snaps []snapshot.Metadata, p Policy, drills []reports.DrillResult, now time.Time) []Decision {
	snaps = append([]snapshot.Metadata(nil), snaps...)
	snapshot.SortNewestFirst(snaps)
	out := make([]Decision, len(snaps))
	verified := lastDrillPassed(drills)
	keptVerified := false
	for i, s := range snaps {
		d := Decision{Snapshot: s, Reason: ReasonExpired}
		switch {
		case !p.Enabled():
			d.Keep, d.Reason = true, ReasonNoPolicy
		case p.KeepLast > 0 && i < p.KeepLast:
			d.Keep, d.Reason = true, ReasonKeepLast
		case p.KeepWithin > 0 && now.Sub(s.TakenAt) < p.KeepWithin:
			d.Keep, d.Reason = true, ReasonKeepWithin
		}
		if d.Keep && verified[s.ID] {
			keptVerified = true
		}
		out[i] = d
	}
	if !keptVerified {
		for i := range out {
			if verified[out[i].Snapshot.ID] {
				out[i].Keep, out[i].Reason = true, ReasonVerified
				break
			}
		}
	}
	return out
}

// lastDrillPassed maps snapshot ids to whether their most recent drill passed.
func lastDrillPassed(drills []reports.DrillResult) map[string]bool {
	sorted := append([]reports.DrillResult(nil), drills...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].StartedAt.After(sorted[j].StartedAt) })
	out := map[string]bool{}
	seen := map[string]bool{}
	for _, d := range sorted {
		if d.Snapshot == nil || d.Snapshot.ID == "" || seen[d.Snapshot.ID] {
			continue
		}
		seen[d.Snapshot.ID] = true
		out[d.Snapshot.ID] = d.Status == reports.StatusPass
	}
	return out
}

// Store is where a target's snapshots are: a local repository, or a csi driver's view of one
// target.
type Store interface {
	List(ctx context.Context) ([]snapshot.Metadata, error)
	Delete(ctx context.Context, id string) error
}

// History is the drill history (reports/history.Store satisfies it).
type History interface {
	List(ctx context.Context, target string) ([]reports.DrillResult, error)
}

// Apply plans and deletes. It returns every decision; deletions that failed are reported
// together, after the others were attempted.
func Apply(ctx context.Context, target string, store Store, hist History, p Policy, now time.Time) ([]Decision, error) {
	if !p.Enabled() {
		return nil, nil
	}
	snaps, err := store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("while listing snapshots of %s for retention: %w", target, err)
	}
	var drills []reports.DrillResult
	if hist != nil {
		if drills, err = hist.List(ctx, target); err != nil {
			// Without the history, retention cannot know which snapshot is proved: delete nothing.
			return nil, fmt.Errorf("while reading the drill history of %s for retention (nothing was deleted): %w", target, err)
		}
	}
	plan := Plan(snaps, p, drills, now)
	var errs []error
	for _, d := range plan {
		if d.Keep {
			continue
		}
		if err := store.Delete(ctx, d.Snapshot.ID); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
			errs = append(errs, fmt.Errorf("while deleting snapshot %s of %s: %w", d.Snapshot.ID, target, err))
		}
	}
	return plan, errors.Join(errs...)
}
