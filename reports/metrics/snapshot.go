package metrics

import "github.com/firedrill/firedrill/reports"

// ObserveSnapshot records the outcome of taking a target's snapshot: whether it was taken, how
// long it held the database frozen, and its recovery point.
func (m *Metrics) ObserveSnapshot(r *reports.SnapshotResult) {
	if r == nil || r.Target == "" {
		return
	}
	taken := r.Status != reports.SnapshotResultError && r.Snapshot != nil
	m.snapshotSuccess.WithLabelValues(r.Target).Set(boolValue(taken))
	if !taken {
		return
	}
	m.snapshotFrozen.WithLabelValues(r.Target).Set(r.Snapshot.FrozenSeconds)
	m.snapshotAt.WithLabelValues(r.Target).Set(unix(r.Snapshot.TakenAt))
}
