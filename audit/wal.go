package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
)

// Reasons the WAL-archiving check names.
const (
	ReasonArchivingOff     = "archiving-off"
	ReasonNoArchiveCommand = "no-archive-command"
	ReasonArchiveFailing   = "archive-failing"
	ReasonArchiveTooOld    = "archive-too-old"
	ReasonNeverArchived    = "never-archived"
	ReasonReadyBacklog     = "ready-backlog"
	ReasonReadyUnknown     = "ready-unknown"
	ReasonReplicationLag   = "replication-lag"
	ReasonNoStandby        = "no-standby"
	// ReasonArchiveIntermittent: archive_command failed since the previous audit (or within
	// the RPO) but the archiver got past it, or is still retrying within wal.failureGrace.
	ReasonArchiveIntermittent = "archive-intermittent"
	// ReasonArchiveMissing: the segment pg_stat_archiver says was archived last is not in the
	// archive (an archive_command that reports success without archiving: /bin/true).
	ReasonArchiveMissing = "archive-missing"
	// ReasonArchiveWrongSize: it is there, but not wal_segment_size bytes (and not compressed).
	ReasonArchiveWrongSize = "archive-wrong-size"
	// ReasonArchiveGap: segments missing from the archive since the newest base backup.
	ReasonArchiveGap = "archive-gap"
)

// Querier is the part of a PostgreSQL connection the WAL check uses (*pgx.Conn).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ArchiverState is what the server says about WAL archiving, read in one go.
type ArchiverState struct {
	InRecovery  bool   `json:"inRecovery"`
	ArchiveMode string `json:"archiveMode"`
	// ArchiveCommand is never reported: it may carry credentials (an inline key, a URL).
	ArchiveCommand    string     `json:"-"`
	ArchiveCommandSet bool       `json:"archiveCommandSet"`
	ArchiveLibrary    string     `json:"archiveLibrary,omitempty"`
	SegmentBytes      int64      `json:"walSegmentBytes"`
	ArchivedCount     int64      `json:"archivedCount"`
	LastArchivedWAL   string     `json:"lastArchivedWal,omitempty"`
	LastArchivedTime  *time.Time `json:"lastArchivedTime,omitempty"`
	FailedCount       int64      `json:"failedCount"`
	LastFailedWAL     string     `json:"lastFailedWal,omitempty"`
	LastFailedTime    *time.Time `json:"lastFailedTime,omitempty"`
	StatsReset        *time.Time `json:"statsReset,omitempty"`
	// CurrentLSN is the WAL insert position (the replay position on a standby).
	CurrentLSN     string `json:"currentLsn"`
	CurrentWALFile string `json:"currentWalFile,omitempty"`
	currentBytes   int64
	// WALBytesSinceArchived is how much WAL lies past the end of the last archived segment;
	// nil when it cannot be known (nothing archived, or a history file was archived last).
	WALBytesSinceArchived *int64 `json:"walBytesSinceArchived,omitempty"`
	// Ready counts segments waiting for the archiver; nil when it could not be read (ReadyErr).
	Ready    *int   `json:"ready,omitempty"`
	ReadyErr string `json:"readyError,omitempty"`
	// OldestReady is when the oldest segment still waiting was completed (its .ready file).
	OldestReady *time.Time `json:"oldestReadyTime,omitempty"`
	Standbys    []Standby  `json:"standbys,omitempty"`
}

// Standby is one row of pg_stat_replication.
type Standby struct {
	Name             string   `json:"name"`
	State            string   `json:"state"`
	ReplayLagSeconds *float64 `json:"replayLagSeconds,omitempty"`
	ReplayLagBytes   *int64   `json:"replayLagBytes,omitempty"`
}

const archiverSQL = `SELECT pg_is_in_recovery(),
  current_setting('archive_mode'), current_setting('archive_command'),
  coalesce(current_setting('archive_library', true), ''),
  (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
  a.archived_count, coalesce(a.last_archived_wal, ''), a.last_archived_time,
  a.failed_count, coalesce(a.last_failed_wal, ''), a.last_failed_time, a.stats_reset
FROM pg_stat_archiver a`

// ReadArchiver reads pg_stat_archiver, the archive settings, the WAL position, the .ready
// count (pg_ls_archive_statusdir, which needs pg_monitor or superuser) and, when withStandbys,
// pg_stat_replication.
func ReadArchiver(ctx context.Context, q Querier, withStandbys bool) (ArchiverState, error) {
	var st ArchiverState
	err := q.QueryRow(ctx, archiverSQL).Scan(&st.InRecovery, &st.ArchiveMode, &st.ArchiveCommand, &st.ArchiveLibrary,
		&st.SegmentBytes, &st.ArchivedCount, &st.LastArchivedWAL, &st.LastArchivedTime,
		&st.FailedCount, &st.LastFailedWAL, &st.LastFailedTime, &st.StatsReset)
	if err != nil {
		return st, fmt.Errorf("while reading pg_stat_archiver: %w", err)
	}
	if st.InRecovery {
		err = q.QueryRow(ctx, `SELECT coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text,
			pg_wal_lsn_diff(coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), '0/0')::bigint`).Scan(&st.CurrentLSN, &st.currentBytes)
	} else {
		err = q.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn()),
			pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&st.CurrentLSN, &st.CurrentWALFile, &st.currentBytes)
	}
	if err != nil {
		return st, fmt.Errorf("while reading the WAL position: %w", err)
	}
	if end, ok := segmentEnd(st.LastArchivedWAL, st.SegmentBytes); ok {
		since := max(st.currentBytes-end, 0)
		st.WALBytesSinceArchived = &since
	}
	var ready int
	if err := q.QueryRow(ctx, `SELECT count(*), min(modification) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'`).Scan(&ready, &st.OldestReady); err != nil {
		// Not fatal: the rest of the check stands; the finding says what is missing and why.
		st.ReadyErr = Cause(err) + ": " + strings.Join(strings.Fields(err.Error()), " ")
	} else {
		st.Ready = &ready
	}
	if withStandbys && !st.InRecovery {
		rows, err := q.Query(ctx, `SELECT coalesce(application_name, ''), coalesce(state, ''),
			extract(epoch FROM replay_lag)::float8, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint
			FROM pg_stat_replication ORDER BY application_name`)
		if err != nil {
			return st, fmt.Errorf("while reading pg_stat_replication: %w", err)
		}
		for rows.Next() {
			var s Standby
			if err := rows.Scan(&s.Name, &s.State, &s.ReplayLagSeconds, &s.ReplayLagBytes); err != nil {
				rows.Close()
				return st, fmt.Errorf("while reading pg_stat_replication: %w", err)
			}
			st.Standbys = append(st.Standbys, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return st, fmt.Errorf("while reading pg_stat_replication: %w", err)
		}
	}
	return st, nil
}

// segmentEnd is the LSN (as bytes) just past WAL segment file name: TTTTTTTTXXXXXXXXYYYYYYYY,
// timeline, then the segment number split in "log" and "seg" parts.
func segmentEnd(name string, segBytes int64) (int64, bool) {
	name = strings.TrimSuffix(name, ".partial")
	if len(name) != 24 || segBytes <= 0 {
		return 0, false
	}
	hi, err1 := strconv.ParseUint(name[8:16], 16, 32)
	lo, err2 := strconv.ParseUint(name[16:24], 16, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	perLog := int64(0x100000000) / segBytes
	seg := int64(hi)*perLog + int64(lo)
	return (seg + 1) * segBytes, true
}

// WALInput is what the WAL-archiving check judges an archiver state against.
type WALInput struct {
	RPO  time.Duration
	Spec policy.WALAudit
	Now  time.Time
	// Previous is what the previous audit of the target saw (nil: none kept, or the first).
	Previous *WALSample
	// Archive is what the WAL archive holds (nil: audit.wal.archive is not set).
	Archive *ArchiveCheck
}

// EvaluateWAL judges an archiver state at now against the RPO and spec, with no previous audit
// and no look into the archive.
func EvaluateWAL(st ArchiverState, rpo time.Duration, spec policy.WALAudit, now time.Time) checks.Finding {
	return EvaluateWALWith(st, WALInput{RPO: rpo, Spec: spec, Now: now})
}

// EvaluateWALWith judges an archiver state: a pure function of its inputs, so the same state
// and the same previous audit give the same finding (and exit code) whenever it runs.
func EvaluateWALWith(st ArchiverState, in WALInput) checks.Finding {
	rpo, spec, now := in.RPO, in.Spec, in.Now
	ev := checks.Evidence{"archiver": st, "rpo": rpo.String(), "maxReady": spec.MaxReady, "idleWalBytes": spec.IdleWALBytes, "now": now}
	var p problems
	cmd := strings.TrimSpace(st.ArchiveCommand)
	if cmd == "(disabled)" {
		cmd = ""
	}
	st.ArchiveCommandSet = cmd != ""
	ev["archiver"] = st
	switch {
	case st.ArchiveMode != "on" && st.ArchiveMode != "always":
		p.fail(ReasonArchivingOff, "archive_mode is %s: WAL is not archived", st.ArchiveMode)
		return p.finding(policy.CheckWALArchiving, ev, "")
	case st.InRecovery && st.ArchiveMode != "always":
		return checks.Passf(policy.CheckWALArchiving, ev, "standby with archive_mode=on: the primary archives")
	case cmd == "" && st.ArchiveLibrary == "":
		p.fail(ReasonNoArchiveCommand, "archive_mode is %s but neither archive_command nor archive_library is set: WAL piles up in pg_wal", st.ArchiveMode)
	}
	fr := failuresOf(st, in.Previous, rpo, now)
	ev["failures"] = fr
	failing := st.FailedCount > 0 && st.LastFailedTime != nil && (st.LastArchivedTime == nil || st.LastFailedTime.After(*st.LastArchivedTime))
	last := "never since " + timeOr(st.StatsReset, "the statistics reset")
	if st.LastArchivedTime != nil {
		last = fmt.Sprintf("%s (%s ago)", st.LastArchivedTime.UTC().Format(time.RFC3339), age(now.Sub(*st.LastArchivedTime)))
	}
	failedNote := ""
	switch {
	case failing:
		// The archiver retries a failed segment (three tries, then again a minute later): an
		// archive_command that fails now and then is past it within seconds. Only a segment
		// still waiting after the grace proves archiving stuck; before that it is a warning,
		// so an audit landing between a failure and its retry does not flip the exit code.
		waited, known := time.Duration(0), st.Ready != nil && (*st.Ready == 0 || st.OldestReady != nil)
		if known && st.OldestReady != nil {
			waited = max(now.Sub(*st.OldestReady), 0)
		}
		grace := spec.FailureGrace.Duration
		if grace <= 0 || !known || waited > grace {
			why := ""
			switch {
			case grace > 0 && !known:
				why = " (how long the segment has waited is unknown: grant pg_monitor)"
			case grace > 0:
				why = fmt.Sprintf(" (the oldest segment has waited %s, longer than the %s grace)", age(waited), human(grace))
			}
			p.fail(ReasonArchiveFailing, "archiving is failing: %d failures, the last for %s at %s (%s)%s; last success %s",
				fr.Failed, st.LastFailedWAL, st.LastFailedTime.UTC().Format(time.RFC3339), fr.describe(), why, last)
		} else {
			p.warn(ReasonArchiveIntermittent, "archiving failed for %s at %s and is being retried (waiting %s, grace %s): %d failures %s; last success %s",
				st.LastFailedWAL, st.LastFailedTime.UTC().Format(time.RFC3339), age(waited), human(grace), fr.Failed, fr.describe(), last)
		}
	case fr.Recent:
		p.warn(ReasonArchiveIntermittent, "%d archive %s %s, the last for %s at %s; archiving got past them (last success %s)",
			fr.Failed, plural(int(fr.Failed), "failure", "failures"), fr.describe(), st.LastFailedWAL, st.LastFailedTime.UTC().Format(time.RFC3339), last)
	case st.FailedCount > 0 && st.LastFailedTime != nil:
		failedNote = fmt.Sprintf("; %d failures since %s, the last at %s, none %s", st.FailedCount, timeOr(st.StatsReset, "the statistics reset"),
			st.LastFailedTime.UTC().Format(time.RFC3339), fr.Window)
	}
	if a := in.Archive; a != nil {
		ev["archive"] = a
		a.judge(&p, st)
	}
	idle := ""
	if st.LastArchivedTime != nil {
		a := now.Sub(*st.LastArchivedTime)
		ev["lastArchivedAgeSeconds"] = a.Seconds()
		if a > rpo {
			switch since := st.WALBytesSinceArchived; {
			case since != nil && *since <= spec.IdleWALBytes:
				// Nothing (or only housekeeping records) was written since: an idle server has
				// nothing to archive, and its old last archive loses no data.
				idle = fmt.Sprintf(" (idle: %d bytes of WAL since segment %s)", *since, st.LastArchivedWAL)
			case since != nil:
				p.fail(ReasonArchiveTooOld, "last segment %s was archived %s ago (RPO %s) and %d bytes of WAL written since are not archived",
					st.LastArchivedWAL, age(a), human(rpo), *since)
			default:
				p.fail(ReasonArchiveTooOld, "last archive (%s) was %s ago (RPO %s)", st.LastArchivedWAL, age(a), human(rpo))
			}
		}
	} else if st.FailedCount == 0 {
		p.warn(ReasonNeverArchived, "no WAL segment archived since %s", timeOr(st.StatsReset, "the statistics reset"))
	}
	switch {
	case st.Ready == nil:
		p.warn(ReasonReadyUnknown, "could not count segments waiting to be archived (%s; grant pg_monitor)", st.ReadyErr)
	case *st.Ready > spec.MaxReady:
		p.fail(ReasonReadyBacklog, "%d segments wait to be archived (.ready), more than %d", *st.Ready, spec.MaxReady)
	}
	if lag := spec.MaxReplicationLag.Duration; lag > 0 && !st.InRecovery {
		ev["maxReplicationLag"] = lag.String()
		if len(st.Standbys) == 0 {
			p.warn(ReasonNoStandby, "no standby connected (pg_stat_replication is empty)")
		}
		for _, s := range st.Standbys {
			if s.ReplayLagSeconds != nil && time.Duration(*s.ReplayLagSeconds*float64(time.Second)) > lag {
				p.fail(ReasonReplicationLag, "standby %s replays %s behind (max %s)", s.Name, age(time.Duration(*s.ReplayLagSeconds*float64(time.Second))), human(lag))
			}
		}
	}
	ok := "archiving works"
	if st.LastArchivedTime != nil {
		ok = fmt.Sprintf("archiving works: last segment %s archived %s ago%s", st.LastArchivedWAL, age(now.Sub(*st.LastArchivedTime)), idle)
	}
	if st.Ready != nil {
		ok += fmt.Sprintf(", %d waiting", *st.Ready)
	}
	if a := in.Archive; a != nil && a.Err == nil {
		ok += ", " + a.summary()
	}
	ok += failedNote
	return p.finding(policy.CheckWALArchiving, ev, ok)
}

// WALSample is what one audit saw of the archiver, kept for the next (see StateStore).
type WALSample struct {
	At             time.Time  `json:"at"`
	ArchivedCount  int64      `json:"archivedCount"`
	FailedCount    int64      `json:"failedCount"`
	StatsReset     *time.Time `json:"statsReset,omitempty"`
	LastFailedTime *time.Time `json:"lastFailedTime,omitempty"`
}

// SampleOf is the part of a state the next audit compares with.
func SampleOf(st ArchiverState, now time.Time) WALSample {
	return WALSample{At: now.UTC(), ArchivedCount: st.ArchivedCount, FailedCount: st.FailedCount, StatsReset: st.StatsReset, LastFailedTime: st.LastFailedTime}
}

// failureRate is archive_command's record over a window: since the previous audit when one was
// kept (and the statistics were not reset since), else since the statistics reset.
type failureRate struct {
	// Window says since when: "since the previous audit at ..." or "since the statistics reset ...".
	Window   string `json:"window"`
	Failed   int64  `json:"failed"`
	Archived int64  `json:"archived"`
	// Rate is Failed over all attempts (Failed + Archived), 0 with none.
	Rate float64 `json:"rate"`
	// Recent: a failure in the window (after the previous audit; without one, within the RPO).
	Recent bool `json:"recent"`
}

func failuresOf(st ArchiverState, prev *WALSample, rpo time.Duration, now time.Time) failureRate {
	r := failureRate{Window: "since the statistics reset", Failed: st.FailedCount, Archived: st.ArchivedCount}
	if st.StatsReset != nil {
		r.Window = "since the statistics reset at " + st.StatsReset.UTC().Format(time.RFC3339)
	}
	usable := prev != nil && prev.At.Before(now) && sameTime(prev.StatsReset, st.StatsReset) &&
		st.FailedCount >= prev.FailedCount && st.ArchivedCount >= prev.ArchivedCount
	if usable {
		r.Window = "since the previous audit at " + prev.At.UTC().Format(time.RFC3339)
		r.Failed, r.Archived = st.FailedCount-prev.FailedCount, st.ArchivedCount-prev.ArchivedCount
		r.Recent = r.Failed > 0
	} else {
		// No previous audit to compare with: the RPO is the window of what is recent.
		r.Recent = st.FailedCount > 0 && st.LastFailedTime != nil && now.Sub(*st.LastFailedTime) < rpo
	}
	if n := r.Failed + r.Archived; n > 0 {
		r.Rate = float64(r.Failed) / float64(n)
	}
	return r
}

func (r failureRate) describe() string {
	if r.Failed+r.Archived == 0 {
		return r.Window
	}
	return fmt.Sprintf("%s, %.0f%% of %d attempts", r.Window, r.Rate*100, r.Failed+r.Archived)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func timeOr(t *time.Time, d string) string {
	if t == nil {
		return d
	}
	return t.UTC().Format(time.RFC3339)
}
