package audit

import (
	"context"
	"fmt"
	"strings"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// Reasons the backup-integrity check names.
const (
	// ReasonDamaged: a snapshot's metadata is missing, unreadable or inconsistent: it cannot be
	// restored, and it is not counted as a backup.
	ReasonDamaged = "damaged"
	// ReasonForeign: a snapshot's metadata names another target: it is not this target's backup.
	ReasonForeign = "foreign"
)

// SnapshotInventory lists every snapshot folder of a repository, damaged and foreign ones
// included, each with its status and reason (restore/snapshot/local.Repository).
type SnapshotInventory interface {
	ListAll(ctx context.Context) ([]snapshot.Metadata, error)
}

// integrity runs backup-integrity over the target's snapshot repositories that can report damage
// (local ones: the target's own, and locations of kind snapshots). Listings of backups leave a
// damaged snapshot out, so backup-age would silently judge an older one: this check is where it
// shows. ok is false when there is nothing to judge: no such repository among the sources, or
// none holds a snapshot (backup-age reports a repository with no backups).
func (a *Auditor) integrity(ctx context.Context, cfg *policy.Config, t *policy.Target) (f checks.Finding, ok bool) {
	var inv []RepositoryInventory
	for _, s := range t.Audit.Sources {
		if s.Location != "" {
			if l, found := cfg.Location(s.Location); !found || l.Kind != policy.LocationSnapshots {
				continue
			}
		}
		st, src := a.build(ctx, cfg, t, s)
		if st.Err != nil {
			inv = append(inv, RepositoryInventory{Source: st})
			continue
		}
		ss, isSnap := src.(*SnapshotSource)
		if !isSnap {
			continue
		}
		lister, canTell := ss.Lister.(SnapshotInventory)
		if !canTell {
			continue // a driver that lists only complete snapshots (CSI) has no damage to report
		}
		all, err := lister.ListAll(ctx)
		if err != nil {
			st.Err = &SourceError{Source: st.Name, Where: st.Where, Op: "listing", Err: err}
		}
		inv = append(inv, RepositoryInventory{Source: st, Snapshots: all})
	}
	judged := false
	for _, i := range inv {
		if i.Source.Err != nil || len(i.Snapshots) > 0 {
			judged = true
		}
	}
	if !judged {
		return checks.Finding{}, false
	}
	return CheckBackupIntegrity(inv), true
}

// RepositoryInventory is one snapshot repository's full listing, or why it could not be read
// (Source.Err).
type RepositoryInventory struct {
	Source    *SourceState
	Snapshots []snapshot.Metadata
}

// CheckBackupIntegrity fails when a snapshot repository holds a snapshot that is not a
// restorable backup of the target: damaged (metadata missing or unreadable) or foreign (another
// target's). Each is named with its reason.
func CheckBackupIntegrity(inv []RepositoryInventory) checks.Finding {
	var p problems
	var rows []map[string]any
	var okParts []string
	for _, i := range inv {
		row, ok := i.Source.row(&p)
		rows = append(rows, row)
		if !ok {
			continue
		}
		complete := 0
		var bad []map[string]any
		for _, m := range i.Snapshots {
			if m.Restorable() {
				complete++
				continue
			}
			bad = append(bad, map[string]any{"id": m.ID, "status": m.Status, "reason": m.Reason, "time": m.TakenAt})
			reason := ReasonDamaged
			if m.Status == snapshot.StatusForeign {
				reason = ReasonForeign
			}
			newest := ""
			if i.Snapshots[0].ID == m.ID {
				newest = "newest "
			}
			p.fail(reason, "%s: %ssnapshot %s is %s: %s", i.Source.Name, newest, m.ID, m.Status, oneLine(m.Reason))
		}
		row["snapshots"], row["complete"] = len(i.Snapshots), complete
		if len(bad) > 0 {
			row["status"], row["unrestorable"] = "fail", bad
			continue
		}
		row["status"] = "pass"
		okParts = append(okParts, fmt.Sprintf("%s %d", i.Source.Name, complete))
	}
	ok := "every snapshot is complete: " + strings.Join(okParts, ", ")
	return p.finding(policy.CheckBackupIntegrity, checks.Evidence{"sources": rows}, ok)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
