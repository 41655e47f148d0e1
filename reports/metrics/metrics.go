package metrics

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Target is what metrics know of a configured target before anything ran: its label sets are
// created up front from it, so every series exists (NaN: not known yet) before the first failure.
type Target struct {
	Name, Engine string
	RPO, RTO     time.Duration
	// Checks are the drill's check names (amcheck, checksums, ...).
	Checks []string
	// Phases are the drill's phase names (select, clone, start-and-recovery, teardown, ...).
	Phases []string
	// Sources are the target's backup sources, by their audit.sources names.
	Sources []string
	// CopyKinds are the kinds of media its copies live on (disk, object-storage,
	// volume-snapshot): the values of firedrill_backup_copies' kind label.
	CopyKinds []string
}

// AuditChecks are the audit's check names (audit/policy.AuditChecks, spelled out here because
// reports never imports audit): their check_success series and the audit_errors_total series of
// errors no backup source is to blame for exist from the start for every target.
var AuditChecks = []string{"wal-archiving", "wal-continuity", "backup-age", "backup-integrity", "backup-size", "copies-3-2-1", "drill-recency"}

// DrillDurationBuckets reach an hour: a drill copies a whole database (external-snapshotter
// sizes its buckets for slow storage up to 600 s; a restore of a large database on slow storage
// takes longer still).
var DrillDurationBuckets = []float64{0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600}

// Option configures New.
type Option func(*Metrics)

// WithClock sets the clock backup ages are measured with at scrape time (default time.Now).
func WithClock(now func() time.Time) Option { return func(m *Metrics) { m.now = now } }

// WithVersion sets firedrill_build_info's version label (default: the main module's version
// from the build information).
func WithVersion(version string) Option { return func(m *Metrics) { m.version = version } }

// Metrics holds every firedrill metric of one registry. Its methods are safe for concurrent use.
type Metrics struct {
	now     func() time.Time
	version string

	mu      sync.Mutex
	targets map[string]Target
	// backupTimes[target][source] is the newest good backup's Unix time: NaN not known yet, 0
	// none (the age is then +Inf).
	backupTimes map[string]map[string]float64
	// wal[target] is pg_stat_archiver's counters as last read; absent until first read.
	wal map[string]walCounters
	// lastDrillStart[target] is when the newest drill observed started (from a result or from
	// the drill-recency evidence), so older news never overwrites newer.
	lastDrillStart map[string]time.Time
	// lastSuccess[target] is when the newest passing drill observed finished.
	lastSuccess map[string]time.Time

	drillLastRun, drillLastSuccess, drillSuccess *prometheus.GaugeVec
	drillDuration                                *prometheus.HistogramVec
	phaseDuration                                *prometheus.GaugeVec
	rtoTarget, rtoMet, rtoActual                 *prometheus.GaugeVec
	backupLast, backupSize, rpoTarget            *prometheus.GaugeVec
	walLastArchived, walPending                  *prometheus.GaugeVec
	copies, copiesRequired, copyImmutable        *prometheus.GaugeVec
	checkSuccess, checkDuration                  *prometheus.GaugeVec
	auditDuration, auditLastRun                  *prometheus.GaugeVec
	auditErrors                                  *prometheus.CounterVec
	snapshotFrozen, snapshotSuccess, snapshotAt  *prometheus.GaugeVec
	buildInfo                                    *prometheus.GaugeVec

	// perTarget are the vectors with a target label, for deleting a removed target's series.
	perTarget []interface {
		DeletePartialMatch(prometheus.Labels) int
	}
}

// Metric family names.
const (
	nameDrillLastRun      = "firedrill_drill_last_run_timestamp_seconds"
	nameDrillLastSuccess  = "firedrill_drill_last_success_timestamp_seconds"
	nameDrillSuccess      = "firedrill_drill_success"
	nameDrillDuration     = "firedrill_drill_duration_seconds"
	namePhaseDuration     = "firedrill_drill_phase_duration_seconds"
	nameRTOTarget         = "firedrill_rto_target_seconds"
	nameRTOMet            = "firedrill_drill_rto_met"
	nameRTOActual         = "firedrill_drill_rto_actual_seconds"
	nameBackupLast        = "firedrill_backup_last_timestamp_seconds"
	nameBackupAge         = "firedrill_backup_age_seconds"
	nameRPOTarget         = "firedrill_rpo_target_seconds"
	nameBackupSize        = "firedrill_backup_size_bytes"
	nameWALArchived       = "firedrill_wal_archived_total"
	nameWALFailed         = "firedrill_wal_archive_failed_total"
	nameWALLastArchived   = "firedrill_wal_last_archived_timestamp_seconds"
	nameWALPending        = "firedrill_wal_archive_pending_segments"
	nameCopies            = "firedrill_backup_copies"
	nameCopiesRequired    = "firedrill_backup_copies_required"
	nameCopyImmutable     = "firedrill_copy_immutable"
	nameCheckSuccess      = "firedrill_check_success"
	nameCheckDuration     = "firedrill_check_duration_seconds"
	nameAuditDuration     = "firedrill_audit_duration_seconds"
	nameAuditLastRun      = "firedrill_audit_last_run_timestamp_seconds"
	nameAuditErrors       = "firedrill_audit_errors_total"
	nameSnapshotFrozen    = "firedrill_snapshot_frozen_seconds"
	nameSnapshotSuccess   = "firedrill_snapshot_success"
	nameSnapshotLastTaken = "firedrill_snapshot_last_success_timestamp_seconds"
	nameBuildInfo         = "firedrill_build_info"
)

// Names returns the name of every metric family New registers, sorted.
func Names() []string {
	n := []string{
		nameDrillLastRun, nameDrillLastSuccess, nameDrillSuccess, nameDrillDuration, namePhaseDuration,
		nameRTOTarget, nameRTOMet, nameRTOActual,
		nameBackupLast, nameBackupAge, nameRPOTarget, nameBackupSize,
		nameWALArchived, nameWALFailed, nameWALLastArchived, nameWALPending,
		nameCopies, nameCopiesRequired, nameCopyImmutable,
		nameCheckSuccess, nameCheckDuration, nameAuditDuration, nameAuditLastRun, nameAuditErrors,
		nameSnapshotFrozen, nameSnapshotSuccess, nameSnapshotLastTaken, nameBuildInfo,
	}
	slices.Sort(n)
	return n
}

// New builds the metrics, registers them all on reg (a private registry: firedrill serve's) and
// creates every label set of every target.
func New(reg prometheus.Registerer, targets []Target, opts ...Option) (*Metrics, error) {
	m := &Metrics{
		now:            time.Now,
		targets:        map[string]Target{},
		backupTimes:    map[string]map[string]float64{},
		wal:            map[string]walCounters{},
		lastDrillStart: map[string]time.Time{},
		lastSuccess:    map[string]time.Time{},
	}
	for _, o := range opts {
		o(m)
	}
	if m.version == "" {
		m.version = buildVersion()
	}
	t := []string{"target"}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, append(t, labels...))
		m.perTarget = append(m.perTarget, v)
		return v
	}
	m.drillLastRun = gauge(nameDrillLastRun, "When the target's last restore drill started, as a Unix time (NaN until a drill is known).")
	m.drillLastSuccess = gauge(nameDrillLastSuccess, "When the target's last passing restore drill finished, as a Unix time: the last time its backups were proved restorable (NaN until a passing drill is known).")
	m.drillSuccess = gauge(nameDrillSuccess, "1 if the target's last restore drill passed, 0 if it failed or could not run (see the drill's result for which).")
	m.drillDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: nameDrillDuration,
		Help:    "How long restore drills that completed (passed or failed) took, from start to teardown.",
		Buckets: DrillDurationBuckets}, t)
	m.perTarget = append(m.perTarget, m.drillDuration)
	m.phaseDuration = gauge(namePhaseDuration, "How long each phase of the target's last drill took (NaN: the last drill did not reach it).", "phase")
	m.rtoTarget = gauge(nameRTOTarget, "The target's recovery time objective: the longest a restore to a verified, usable copy may take (NaN: none configured).")
	m.rtoMet = gauge(nameRTOMet, "1 if the last completed drill reached a verified copy within the RTO, 0 if it took longer.")
	m.rtoActual = gauge(nameRTOActual, "How long the last completed drill took to reach a verified, usable copy: the measured recovery time, compared with firedrill_rto_target_seconds.")
	m.backupLast = gauge(nameBackupLast, "When the newest good backup at this source was taken, as a Unix time, as of the last audit (0: the source holds no good backup; NaN: not read yet).", "source")
	m.rpoTarget = gauge(nameRPOTarget, "The target's recovery point objective: the most data, in seconds, its backups may lose (the oldest the newest backup may be).")
	m.backupSize = gauge(nameBackupSize, "Size of the newest backup at this source as of the last audit (NaN: not read yet, or the storage reports no size).", "source")
	m.walLastArchived = gauge(nameWALLastArchived, "When PostgreSQL last archived a WAL segment, as a Unix time (pg_stat_archiver.last_archived_time; NaN: none since the statistics reset, or not read yet).")
	m.walPending = gauge(nameWALPending, "WAL segments waiting to be archived (.ready files in pg_wal/archive_status) at the last audit; growing means archiving is falling behind (NaN: could not be counted, grant pg_monitor).")
	m.copies = gauge(nameCopies, "Usable copies of the target's newest backup on each kind of media, as the last 3-2-1 audit counted them (the live database counts as one on disk when copies.liveDatabase is set); their sum is the number of copies.", "kind")
	m.copiesRequired = gauge(nameCopiesRequired, "How many copies of the newest backup the target's policy requires (copies.minCopies).")
	m.copyImmutable = gauge(nameCopyImmutable, "1 if the copy of the newest backup at this source is immutable (Object Lock retains it long enough), 0 if not or if there is no copy there.", "source")
	m.checkSuccess = gauge(nameCheckSuccess, "1 if the check passed (or only warned) the last time it ran, 0 if it failed or could not check. Drill checks (amcheck, checksums, ...) and audit checks (wal-archiving, backup-age, ...).", "check")
	m.checkDuration = gauge(nameCheckDuration, "How long the check took the last time it ran.", "check")
	m.auditDuration = gauge(nameAuditDuration, "How long the target's last audit took.")
	m.auditLastRun = gauge(nameAuditLastRun, "When the target's last audit finished, as a Unix time.")
	m.auditErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: nameAuditErrors,
		Help: "Audits that could not read this source (a backup source, or, for errors no backup source is to blame for, the check that could not run: wal-archiving could not query the database, drill-recency the history): nothing was proved about it."}, append(t, "source"))
	m.perTarget = append(m.perTarget, m.auditErrors)
	m.snapshotFrozen = gauge(nameSnapshotFrozen, "How long the target's last snapshot held its database frozen or in backup mode.")
	m.snapshotSuccess = gauge(nameSnapshotSuccess, "1 if the target's last snapshot was taken, 0 if it failed.")
	m.snapshotAt = gauge(nameSnapshotLastTaken, "When the target's last snapshot taken was cut (its recovery point), as a Unix time.")
	m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: nameBuildInfo,
		Help: "Always 1; its labels say which firedrill build is running."}, []string{"version", "revision", "goversion"})
	m.buildInfo.WithLabelValues(m.version, buildRevision(), runtime.Version()).Set(1)

	cs := []prometheus.Collector{m.drillLastRun, m.drillLastSuccess, m.drillSuccess, m.drillDuration, m.phaseDuration,
		m.rtoTarget, m.rtoMet, m.rtoActual, m.backupLast, m.rpoTarget, m.backupSize, m.walLastArchived, m.walPending,
		m.copies, m.copiesRequired, m.copyImmutable, m.checkSuccess, m.checkDuration, m.auditDuration, m.auditLastRun,
		m.auditErrors, m.snapshotFrozen, m.snapshotSuccess, m.snapshotAt, m.buildInfo, (*stateCollector)(m)}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("while registering firedrill's metrics: %w", err)
		}
	}
	m.SetTargets(targets)
	return m, nil
}

// SetTargets makes the configured targets those given (a config reload): label sets of new
// targets, and of new sources, phases, checks and kinds of kept ones, are created; every series
// of a removed target, source, phase, check or kind is deleted. Values already known stay.
func (m *Metrics) SetTargets(targets []Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := map[string]bool{}
	for _, t := range targets {
		keep[t.Name] = true
	}
	for name := range m.targets {
		if !keep[name] {
			m.deleteTarget(name)
		}
	}
	for _, t := range targets {
		old, had := m.targets[t.Name]
		m.initTarget(old, t, had)
		m.targets[t.Name] = t
	}
}

func (m *Metrics) deleteTarget(name string) {
	for _, v := range m.perTarget {
		v.DeletePartialMatch(prometheus.Labels{"target": name})
	}
	delete(m.targets, name)
	delete(m.backupTimes, name)
	delete(m.wal, name)
	delete(m.lastDrillStart, name)
	delete(m.lastSuccess, name)
}

var nan = math.NaN()

// initTarget creates t's label sets that old (when had) did not have, with the values that
// mean "not known yet": NaN for gauges (so no alert on a value fires before anything was
// measured), 0 for counters, an empty histogram. Label sets old had and t has not are deleted.
func (m *Metrics) initTarget(old, t Target, had bool) {
	n := t.Name
	m.rtoTarget.WithLabelValues(n).Set(secondsOrNaN(t.RTO))
	m.rpoTarget.WithLabelValues(n).Set(secondsOrNaN(t.RPO))
	if !had {
		for _, g := range []*prometheus.GaugeVec{m.drillLastRun, m.drillLastSuccess, m.drillSuccess, m.rtoMet, m.rtoActual,
			m.walLastArchived, m.walPending, m.copiesRequired, m.auditDuration, m.auditLastRun,
			m.snapshotFrozen, m.snapshotSuccess, m.snapshotAt} {
			g.WithLabelValues(n).Set(nan)
		}
		m.drillDuration.WithLabelValues(n)
		m.backupTimes[n] = map[string]float64{}
	}
	added, removed := diff(old.Phases, t.Phases, had)
	for _, p := range added {
		m.phaseDuration.WithLabelValues(n, p).Set(nan)
	}
	for _, p := range removed {
		m.phaseDuration.DeleteLabelValues(n, p)
	}
	added, removed = diff(old.CopyKinds, t.CopyKinds, had)
	for _, k := range added {
		m.copies.WithLabelValues(n, k).Set(nan)
	}
	for _, k := range removed {
		m.copies.DeleteLabelValues(n, k)
	}
	added, removed = diff(withAuditChecks(old.Checks), withAuditChecks(t.Checks), had)
	for _, c := range added {
		m.checkSuccess.WithLabelValues(n, c).Set(nan)
		m.checkDuration.WithLabelValues(n, c).Set(nan)
	}
	for _, c := range removed {
		m.checkSuccess.DeleteLabelValues(n, c)
		m.checkDuration.DeleteLabelValues(n, c)
	}
	added, removed = diff(old.Sources, t.Sources, had)
	for _, s := range added {
		m.backupLast.WithLabelValues(n, s).Set(nan)
		m.backupSize.WithLabelValues(n, s).Set(nan)
		m.copyImmutable.WithLabelValues(n, s).Set(nan)
		m.backupTimes[n][s] = nan
	}
	for _, s := range removed {
		m.backupLast.DeleteLabelValues(n, s)
		m.backupSize.DeleteLabelValues(n, s)
		m.copyImmutable.DeleteLabelValues(n, s)
		delete(m.backupTimes[n], s)
	}
	added, removed = diff(withAuditChecks(old.Sources), withAuditChecks(t.Sources), had)
	for _, s := range added {
		m.auditErrors.WithLabelValues(n, s)
	}
	for _, s := range removed {
		m.auditErrors.DeleteLabelValues(n, s)
	}
}

// diff returns what next has that prev has not, and the reverse; with !had, all of next.
func diff(prev, next []string, had bool) (added, removed []string) {
	if !had {
		prev = nil
	}
	for _, s := range next {
		if !slices.Contains(prev, s) && !slices.Contains(added, s) {
			added = append(added, s)
		}
	}
	for _, s := range prev {
		if !slices.Contains(next, s) && !slices.Contains(removed, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}

func withAuditChecks(names []string) []string {
	out := slices.Clone(names)
	for _, c := range AuditChecks {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func secondsOrNaN(d time.Duration) float64 {
	if d <= 0 {
		return nan
	}
	return d.Seconds()
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

func buildRevision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
