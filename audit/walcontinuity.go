package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/pgbackrest"
	"github.com/firedrill/firedrill/restore/source/walarchive"
)

// Reasons the wal-continuity check names.
const (
	// ReasonContinuityGap: a segment between the newest base backup and the archive's newest
	// segment is missing (or the backup's own WAL is).
	ReasonContinuityGap = "archive-gap"
	// ReasonTimelineBroken: a timeline's history file is missing or unreadable.
	ReasonTimelineBroken = "timeline-broken"
	// ReasonNoBaseBackup: nothing to recover from.
	ReasonNoBaseBackup = "no-base-backup"
)

// CheckWALContinuity walks the archive from the newest base backup's start segment to the
// newest segment without restoring anything: the PITR window (from the backup's end to the
// end of the newest segment) and the first missing segment or broken timeline history.
func CheckWALContinuity(ctx context.Context, archive string, newest *walarchive.BackupLabel, backupID string, backupEnd time.Time) checks.Finding {
	l, err := walarchive.List(ctx, archive, 0)
	if err != nil {
		return checks.Errorf(policy.CheckWALContinuity, checks.Evidence{"archive": archive, "reasons": []string{ReasonUnreadable}},
			"could not list the WAL archive: %s", errLine(err))
	}
	return judgeContinuity(ctx, l, newest, backupID, backupEnd)
}

// judgeContinuity walks a listed archive (l.Dir names it) from newest (nil: the archive's
// newest .backup file).
func judgeContinuity(ctx context.Context, l *walarchive.Listing, newest *walarchive.BackupLabel, backupID string, backupEnd time.Time) checks.Finding {
	archive := l.Dir
	ev := checks.Evidence{"archive": archive}
	if newest == nil {
		// The archive's own record of the newest base backup.
		for _, f := range l.Backups() {
			b, err := l.ReadSmall(f)
			if err != nil {
				continue
			}
			if h, err := walarchive.ParseBackupLabel(b); err == nil {
				newest, backupID = &h, f.Name
				if t, err := time.Parse("2006-01-02 15:04:05 MST", h.StopTime); err == nil {
					backupEnd = t.UTC()
				}
				break
			}
		}
	}
	if newest == nil {
		ev["reasons"] = []string{ReasonNoBaseBackup}
		return checks.Failf(policy.CheckWALContinuity, ev, "no base backup to recover from: neither the backups directory nor the archive (%s) names one", archive)
	}
	from := walarchive.From{Timeline: newest.Timeline, StartLSN: newest.StartLSN, StopLSN: newest.StopLSN}
	ev["baseBackup"], ev["startLsn"] = backupID, from.StartLSN.String()
	plan, perr := l.Plan(from)
	ev["timeline"], ev["segments"], ev["first"], ev["last"] = plan.TargetTimeline, plan.Segments, plan.First, plan.Last
	// The PITR window: from the backup's end (the first consistent point) to the end of the
	// newest segment recovery reaches.
	window := map[string]any{}
	if from.StopLSN != 0 {
		window["fromLsn"] = from.StopLSN.String()
	}
	if !backupEnd.IsZero() {
		window["fromTime"] = backupEnd
	}
	if plan.End != 0 {
		window["toLsn"] = plan.End.String()
		window["toArchivedAt"] = plan.LastArchived.UTC()
	}
	lastCommit := ""
	if bin, err := postgres.FindBinDir("", ""); err == nil {
		if at, lsn, ok := l.LastCommit(ctx, bin, plan, 3); ok {
			window["toTime"], window["lastCommitLsn"] = at, lsn
			lastCommit = fmt.Sprintf(", the last commit at %s", at.Format(time.RFC3339))
		}
	}
	ev["pitrWindow"] = window
	var gap *walarchive.GapError
	var tl *walarchive.TimelineError
	switch {
	case errors.As(perr, &gap):
		ev["reasons"], ev["firstMissing"] = []string{ReasonContinuityGap}, gap.Missing
		if gap.BeforeConsistent {
			return checks.Failf(policy.CheckWALContinuity, ev, "%s: no point in time can be recovered from base backup %s", gap.Error(), backupID)
		}
		return checks.Failf(policy.CheckWALContinuity, ev, "%s; the PITR window from base backup %s ends at %s", gap.Error(), backupID, plan.End)
	case errors.As(perr, &tl):
		ev["reasons"] = []string{ReasonTimelineBroken}
		return checks.Failf(policy.CheckWALContinuity, ev, "%s", tl.Error())
	case perr != nil:
		ev["reasons"] = []string{ReasonUnreadable}
		return checks.Errorf(policy.CheckWALContinuity, ev, "could not walk the WAL archive: %s", errLine(perr))
	}
	fromPoint := "its end"
	if !backupEnd.IsZero() {
		fromPoint = backupEnd.UTC().Format(time.RFC3339)
	}
	return checks.Passf(policy.CheckWALContinuity, ev, "PITR window from base backup %s (%s) to %s (%s, archived %s%s): %d segments on timeline %d without a gap",
		backupID, fromPoint, plan.End, plan.Last, plan.LastArchived.UTC().Format(time.RFC3339), lastCommit, plan.Segments, plan.TargetTimeline)
}

// walContinuity runs the check for a basebackup or pgbackrest target: its newest backup is
// the start.
func (a *Auditor) walContinuity(ctx context.Context, t *policy.Target) checks.Finding {
	s := t.Restore.Source
	unreadable := func(what string, err error) checks.Finding {
		return checks.Errorf(policy.CheckWALContinuity, checks.Evidence{"reasons": []string{ReasonUnreadable}, "error": errLine(err), "cause": CauseField(err)},
			"could not list %s: %s", what, errLine(err))
	}
	var list []snapshot.Metadata
	var err error
	var pgbr *pgbackrest.Source
	bb := BaseBackupSource(t)
	bb.Recovery = postgres.RecoveryTarget{} // the newest backup, whatever the drills' target
	if s.Kind == policy.SourcePgBackRest {
		pgbr = &pgbackrest.Source{Target: t.Name, Stanza: s.Stanza, Config: s.Config, RepoPath: s.RepoPath}
		list, err = pgbr.List(ctx)
	} else {
		list, err = bb.List(ctx)
	}
	if err != nil {
		return unreadable("the backups", err)
	}
	if pgbr != nil {
		if len(list) == 0 {
			return checks.Failf(policy.CheckWALContinuity, checks.Evidence{"reasons": []string{ReasonNoBaseBackup}}, "pgBackRest stanza %s has no backup to recover from", s.Stanza)
		}
		work, err := os.MkdirTemp("", "firedrill-wal-continuity-")
		if err != nil {
			return unreadable("the WAL archive", err)
		}
		defer os.RemoveAll(work)
		l, err := pgbr.Archive(ctx, list[0].Attributes[pgbackrest.AttrArchiveID], work)
		if err != nil {
			return unreadable("the WAL archive", err)
		}
		label, err := labelOf(list[0])
		if err != nil {
			return unreadable("the newest backup's start", err)
		}
		return judgeContinuity(ctx, l, label, list[0].ID, list[0].TakenAt)
	}
	// Listed only: an S3 archive's segments are judged by their names, never downloaded
	// (the timeline history and .backup files, a few bytes each, are read).
	l, err := bb.ListArchive(ctx, 0)
	if err != nil {
		return checks.Errorf(policy.CheckWALContinuity, checks.Evidence{"archive": bb.ArchiveWhere(), "reasons": []string{ReasonUnreadable}, "cause": CauseField(err)},
			"could not list the WAL archive: %s", errLine(err))
	}
	if len(list) == 0 {
		return judgeContinuity(ctx, l, nil, "", time.Time{})
	}
	m := list[0]
	label, err := labelOf(m)
	if err != nil {
		return unreadable("base backup "+m.ID+"'s start", err)
	}
	return judgeContinuity(ctx, l, label, fmt.Sprintf("%s (%s)", m.ID, bb.Where()), m.TakenAt)
}

// labelOf is where a listed backup starts and stops.
func labelOf(m snapshot.Metadata) (*walarchive.BackupLabel, error) {
	start, err := walarchive.ParseLSN(m.StartLSN)
	if err != nil {
		return nil, err
	}
	var stop walarchive.LSN
	if m.StopLSN != "" {
		stop, _ = walarchive.ParseLSN(m.StopLSN)
	}
	return &walarchive.BackupLabel{Timeline: uint32(m.Timeline), StartLSN: start, StopLSN: stop}, nil
}
