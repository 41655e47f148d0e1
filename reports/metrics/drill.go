package metrics

import (
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// ObserveDrill records a finished drill: its outcome and times, each phase's duration, its
// RTO, and each of its checks' outcome. A result older than a drill already observed for the
// target (a history read late) only adds its duration to the histogram.
func (m *Metrics) ObserveDrill(r *reports.DrillResult) {
	if r == nil || r.Target == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := r.Target
	completed := r.Status == reports.StatusPass || r.Status == reports.StatusFail
	if completed && !r.StartedAt.IsZero() && !r.FinishedAt.IsZero() {
		m.drillDuration.WithLabelValues(n).Observe(max(r.FinishedAt.Sub(r.StartedAt).Seconds(), 0))
	}
	if last, ok := m.lastDrillStart[n]; ok && r.StartedAt.Before(last) {
		return
	}
	m.lastDrillStart[n] = r.StartedAt
	m.drillLastRun.WithLabelValues(n).Set(unix(r.StartedAt))
	m.drillSuccess.WithLabelValues(n).Set(boolValue(r.Status == reports.StatusPass))
	if at := finished(r.StartedAt, r.FinishedAt); r.Status == reports.StatusPass && at.After(m.lastSuccess[n]) {
		m.lastSuccess[n] = at
		m.drillLastSuccess.WithLabelValues(n).Set(unix(at))
	}

	phases := map[string]float64{}
	for _, p := range r.Phases {
		phases[p.Name] += p.Seconds
	}
	t := m.targets[n]
	for _, p := range t.Phases {
		if _, ok := phases[p]; !ok {
			m.phaseDuration.WithLabelValues(n, p).Set(nan)
		}
	}
	for p, s := range phases {
		m.phaseDuration.WithLabelValues(n, p).Set(s)
	}

	if r.RTO.TargetSeconds > 0 {
		m.rtoTarget.WithLabelValues(n).Set(r.RTO.TargetSeconds)
	}
	// A drill that could not complete measured no recovery time: the last one that did stands.
	if completed {
		m.rtoActual.WithLabelValues(n).Set(r.RTO.ActualSeconds)
		if r.RTO.TargetSeconds > 0 {
			m.rtoMet.WithLabelValues(n).Set(boolValue(r.RTO.Met))
		}
	}

	ran := m.observeChecks(n, r.Checks)
	for _, c := range t.Checks {
		if !ran[c] {
			// The last drill did not run it (it stopped before its checks, or skipped it).
			m.checkSuccess.WithLabelValues(n, c).Set(nan)
			m.checkDuration.WithLabelValues(n, c).Set(nan)
		}
	}
}

// observeChecks sets each check's success and duration from its findings (a check may report
// one finding per database: the worst decides) and returns the checks it saw.
func (m *Metrics) observeChecks(target string, fs []checks.Finding) map[string]bool {
	byCheck := map[string][]checks.Finding{}
	var order []string
	for _, f := range fs {
		if _, ok := byCheck[f.Check]; !ok {
			order = append(order, f.Check)
		}
		byCheck[f.Check] = append(byCheck[f.Check], f)
	}
	seen := map[string]bool{}
	for _, c := range order {
		seen[c] = true
		w := checks.Worst(byCheck[c])
		m.checkSuccess.WithLabelValues(target, c).Set(boolValue(w == checks.Pass || w == checks.Warn))
		var secs float64
		for _, f := range byCheck[c] {
			secs += f.Seconds
		}
		m.checkDuration.WithLabelValues(target, c).Set(secs)
	}
	return seen
}

// finished is when a drill finished (when it started, if it recorded no finish), as the audit's
// drill-recency check dates it.
func finished(started, finishedAt time.Time) time.Time {
	if finishedAt.IsZero() {
		return started
	}
	return finishedAt
}
