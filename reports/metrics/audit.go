package metrics

import (
	"encoding/json"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// The evidence of the audit's checks, as far as the metrics read it. Evidence is read through
// its JSON form, so the typed values of a live audit and the maps of a report read back from
// JSON are read alike (reports never imports audit, whose types these mirror).

// sourceRow is one source's row in backup-age, backup-size and backup-integrity evidence.
type sourceRow struct {
	Source      string     `json:"source"`
	Status      string     `json:"status"`
	Time        *time.Time `json:"time"`
	NewestBytes *int64     `json:"newestBytes"`
	SizeUnknown bool       `json:"sizeUnknown"`
}

// locationRow is one location's row in copies-3-2-1 evidence.
type locationRow struct {
	Source    string `json:"source"`
	Media     string `json:"media"`
	Status    string `json:"status"`
	Counted   bool   `json:"counted"`
	Immutable bool   `json:"immutable"`
}

// evidence is the union of the keys read.
type evidence struct {
	Sources   []sourceRow   `json:"sources"`
	Locations []locationRow `json:"locations"`
	MinCopies *int          `json:"minCopies"`
	// wal-archiving
	Archiver *struct {
		ArchivedCount    int64      `json:"archivedCount"`
		FailedCount      int64      `json:"failedCount"`
		LastArchivedTime *time.Time `json:"lastArchivedTime"`
		StatsReset       *time.Time `json:"statsReset"`
		Ready            *int       `json:"ready"`
	} `json:"archiver"`
	// drill-recency
	LastDrill *struct {
		ID        string         `json:"id"`
		Status    reports.Status `json:"status"`
		StartedAt time.Time      `json:"startedAt"`
		RTO       reports.RTO    `json:"rto"`
	} `json:"lastDrill"`
	LastPassingDrill *struct {
		FinishedAt time.Time `json:"finishedAt"`
	} `json:"lastPassingDrill"`
}

func readEvidence(f checks.Finding) evidence {
	var ev evidence
	if len(f.Evidence) == 0 {
		return ev
	}
	b, err := json.Marshal(f.Evidence)
	if err != nil {
		return ev
	}
	// Keys of other shapes than expected are left unread: the metric keeps its last value.
	_ = json.Unmarshal(b, &ev)
	return ev
}

// Statuses of evidence rows.
const (
	rowError = "error"
)

// ObserveAudit records one audit of target: each check's outcome and duration, and what the
// evidence says of backups, WAL archiving, copies and the last drills. A source or a database
// that could not be read leaves its last known values (its backup keeps ageing) and counts one
// error in firedrill_audit_errors_total: call AuditError only for errors no finding carries.
func (m *Metrics) ObserveAudit(target string, findings []checks.Finding, took time.Duration) {
	if target == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.auditDuration.WithLabelValues(target).Set(took.Seconds())
	m.auditLastRun.WithLabelValues(target).Set(unix(m.now()))
	m.observeChecks(target, findings)

	errored := map[string]bool{}
	for _, f := range findings {
		ev := readEvidence(f)
		blamed := false
		for _, r := range ev.Sources {
			if r.Status == rowError && r.Source != "" {
				errored[r.Source], blamed = true, true
			}
		}
		for _, r := range ev.Locations {
			if r.Status == rowError && r.Source != "" {
				errored[r.Source], blamed = true, true
			}
		}
		if f.Status == checks.Error && !blamed {
			errored[f.Check] = true
		}
		switch f.Check {
		case "backup-age":
			m.observeBackupAge(target, ev.Sources)
		case "backup-size":
			m.observeBackupSize(target, ev.Sources)
		case "wal-archiving":
			m.observeWAL(target, ev)
		case "copies-3-2-1":
			m.observeCopies(target, ev)
		case "drill-recency":
			m.observeDrillRecency(target, ev)
		}
	}
	for s := range errored {
		m.auditErrors.WithLabelValues(target, s).Inc()
	}
}

// AuditError counts an audit of target that could not read source and produced no finding
// saying so (the audit could not start, a source could not even be built).
func (m *Metrics) AuditError(target, source string) {
	m.auditErrors.WithLabelValues(target, source).Inc()
}

func (m *Metrics) observeBackupAge(target string, rows []sourceRow) {
	times := m.backupTimes[target]
	if times == nil {
		times = map[string]float64{}
		m.backupTimes[target] = times
	}
	for _, r := range rows {
		if r.Source == "" || r.Status == rowError {
			continue
		}
		at := 0.0 // no good backup at all: +Inf old
		if r.Time != nil {
			at = unix(*r.Time)
		}
		times[r.Source] = at
		m.backupLast.WithLabelValues(target, r.Source).Set(at)
	}
}

func (m *Metrics) observeBackupSize(target string, rows []sourceRow) {
	for _, r := range rows {
		switch {
		case r.Source == "" || r.Status == rowError:
		case r.SizeUnknown:
			m.backupSize.WithLabelValues(target, r.Source).Set(nan)
		case r.NewestBytes != nil:
			m.backupSize.WithLabelValues(target, r.Source).Set(float64(*r.NewestBytes))
		}
	}
}

func (m *Metrics) observeWAL(target string, ev evidence) {
	a := ev.Archiver
	if a == nil {
		return // the database could not be read: the last reading stands
	}
	w := walCounters{archived: float64(a.ArchivedCount), failed: float64(a.FailedCount)}
	if a.StatsReset != nil {
		w.statsReset = *a.StatsReset
	}
	m.wal[target] = w
	last := nan
	if a.LastArchivedTime != nil {
		last = unix(*a.LastArchivedTime)
	}
	m.walLastArchived.WithLabelValues(target).Set(last)
	pending := nan
	if a.Ready != nil {
		pending = float64(*a.Ready)
	}
	m.walPending.WithLabelValues(target).Set(pending)
}

func (m *Metrics) observeCopies(target string, ev evidence) {
	if ev.MinCopies != nil {
		m.copiesRequired.WithLabelValues(target).Set(float64(*ev.MinCopies))
	}
	if ev.Locations == nil {
		return // the primary could not be read, or holds no backup: nothing was counted
	}
	kinds := map[string]float64{}
	for _, k := range m.targets[target].CopyKinds {
		kinds[k] = 0
	}
	for _, r := range ev.Locations {
		if r.Counted && r.Media != "" {
			kinds[r.Media]++
		}
		if r.Source == "" || r.Status == rowError || !m.isSource(target, r.Source) {
			continue // the live database is not a source, and is never immutable
		}
		m.copyImmutable.WithLabelValues(target, r.Source).Set(boolValue(r.Counted && r.Immutable))
	}
	for k, n := range kinds {
		m.copies.WithLabelValues(target, k).Set(n)
	}
}

// isSource reports whether source is a configured source of target (any source, when the
// target was never configured).
func (m *Metrics) isSource(target, source string) bool {
	t, ok := m.targets[target]
	if !ok {
		return source != "live-database"
	}
	for _, s := range t.Sources {
		if s == source {
			return true
		}
	}
	return false
}

// observeDrillRecency takes the last drills from the history the audit read: drills run
// elsewhere (a CronJob's 'firedrill drill') and drills before a restart are known this way.
func (m *Metrics) observeDrillRecency(target string, ev evidence) {
	if d := ev.LastPassingDrill; d != nil && !d.FinishedAt.IsZero() {
		if last, ok := m.lastSuccess[target]; !ok || d.FinishedAt.After(last) {
			m.lastSuccess[target] = d.FinishedAt
			m.drillLastSuccess.WithLabelValues(target).Set(unix(d.FinishedAt))
		}
	}
	d := ev.LastDrill
	if d == nil || d.StartedAt.IsZero() {
		return
	}
	if last, ok := m.lastDrillStart[target]; ok && !d.StartedAt.After(last) {
		return
	}
	m.lastDrillStart[target] = d.StartedAt
	m.drillLastRun.WithLabelValues(target).Set(unix(d.StartedAt))
	m.drillSuccess.WithLabelValues(target).Set(boolValue(d.Status == reports.StatusPass))
	if d.Status != reports.StatusError && d.RTO.TargetSeconds > 0 {
		m.rtoMet.WithLabelValues(target).Set(boolValue(d.RTO.Met))
		m.rtoActual.WithLabelValues(target).Set(d.RTO.ActualSeconds)
	}
}
