package retention

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
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
	// Detail is the reason with its numbers: "keepLast 1: 3rd newest; keepWithin 7d: 9d02h old".
	Detail string `json:"detail"`
	// Deleted is set by Apply once the snapshot is gone; Error when deleting it failed.
	Deleted bool   `json:"deleted,omitempty"`
	Error   string `json:"error,omitempty"`
}

// String is the policy's rules as configured: "keepLast 2, keepWithin 7d".
func (p Policy) String() string {
	var parts []string
	if p.KeepLast > 0 {
		parts = append(parts, fmt.Sprintf("keepLast %d", p.KeepLast))
	}
	if p.KeepWithin > 0 {
		parts = append(parts, "keepWithin "+short(p.KeepWithin))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
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
		last := fmt.Sprintf("keepLast %d: %s newest", p.KeepLast, ordinal(i+1))
		within := fmt.Sprintf("keepWithin %s: %s old", short(p.KeepWithin), short(now.Sub(s.TakenAt)))
		switch {
		case !p.Enabled():
			d.Keep, d.Reason, d.Detail = true, ReasonNoPolicy, ReasonNoPolicy
		case p.KeepLast > 0 && i < p.KeepLast:
			d.Keep, d.Reason, d.Detail = true, ReasonKeepLast, last
		case p.KeepWithin > 0 && now.Sub(s.TakenAt) < p.KeepWithin:
			d.Keep, d.Reason, d.Detail = true, ReasonKeepWithin, within
		default:
			var why []string
			if p.KeepLast > 0 {
				why = append(why, last)
			}
			if p.KeepWithin > 0 {
				why = append(why, within)
			}
			d.Detail = strings.Join(why, "; ")
		}
		if d.Keep && verified[s.ID] {
			keptVerified = true
		}
		out[i] = d
	}
	if !keptVerified {
		for i := range out {
			if verified[out[i].Snapshot.ID] {
				out[i].Keep, out[i].Reason, out[i].Detail = true, ReasonVerified, ReasonVerified
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
	for i := range plan {
		d := &plan[i]
		if d.Keep {
			continue
		}
		err := store.Delete(ctx, d.Snapshot.ID)
		switch {
		case err == nil:
			d.Deleted = true
		case errors.Is(err, snapshot.ErrDamaged):
			// Damaged since it was listed: retention never deletes a damaged snapshot.
			d.Error = err.Error()
		case errors.Is(err, snapshot.ErrNotFound):
			d.Deleted = true // gone already (another firedrill's retention)
		default:
			d.Error = err.Error()
			errs = append(errs, fmt.Errorf("while deleting snapshot %s of %s: %w", d.Snapshot.ID, target, err))
		}
	}
	return plan, errors.Join(errs...)
}

// Report summarises what Apply did for the snapshot result: the rules, how many snapshots were
// kept, and each deletion with the rule that let it go. err is Apply's error.
func Report(p Policy, plan []Decision, err error) *snapshot.Retention {
	if !p.Enabled() {
		return nil
	}
	r := &snapshot.Retention{Rules: p.String(), Deleted: []snapshot.Deletion{}}
	for _, d := range plan {
		switch {
		case d.Keep:
			r.Kept++
		case d.Deleted:
			reason := d.Detail
			if reason == "" {
				reason = d.Reason
			}
			r.Deleted = append(r.Deleted, snapshot.Deletion{ID: d.Snapshot.ID, TakenAt: d.Snapshot.TakenAt, Reason: reason})
		}
	}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// ordinal writes 1st, 2nd, 3rd, 4th, 11th, 21st, ...
func ordinal(n int) string {
	suffix := "th"
	switch n % 10 {
	case 1:
		suffix = "st"
	case 2:
		suffix = "nd"
	case 3:
		suffix = "rd"
	}
	if n%100 >= 11 && n%100 <= 13 {
		suffix = "th"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

// short writes a duration compactly: 45s, 12m, 5h30m, 7d, 9d02h.
func short(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + short(-d)
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		if m := int(d.Minutes()) % 60; m != 0 {
			return fmt.Sprintf("%dh%02dm", int(d.Hours()), m)
		}
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	days, hours := int(d.Hours())/24, int(d.Hours())%24
	if hours == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%02dh", days, hours)
}
