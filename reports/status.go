package reports

import (
	"time"

	"github.com/firedrill/firedrill/checks"
)

// ServeStatus is what the serve daemon knows of every target: /api/v1/status's JSON and the
// status page's content. Fields are added over time, never renamed.
type ServeStatus struct {
	SchemaVersion int       `json:"schemaVersion"`
	GeneratedAt   time.Time `json:"generatedAt"`
	// ConfigFile and ConfigLoadedAt say which configuration runs; ReloadError is the last
	// failed reload's error (the previous configuration kept running), empty when none.
	ConfigFile     string         `json:"configFile"`
	ConfigLoadedAt time.Time      `json:"configLoadedAt"`
	ReloadError    string         `json:"reloadError,omitempty"`
	Targets        []TargetStatus `json:"targets"`
}

// TargetStatus is one target as the daemon last saw it.
type TargetStatus struct {
	Target     string  `json:"target"`
	Engine     string  `json:"engine"`
	RPOSeconds float64 `json:"rpoSeconds"`
	RTOSeconds float64 `json:"rtoSeconds"`
	// RPOStatus is the backup-age check's status (pass, warn, fail, error; absent before the
	// first audit); RTOStatus is the last drill's RTO (pass when met, fail when missed; absent
	// before the first drill).
	RPOStatus *checks.Status `json:"rpoStatus,omitempty"`
	RTOStatus *checks.Status `json:"rtoStatus,omitempty"`
	// BackupAgeSeconds is the newest backup's age at the last audit; nil when unknown.
	BackupAgeSeconds *float64 `json:"backupAgeSeconds,omitempty"`
	// Copies and CopiesRequired are the 3-2-1 check's counts; nil when not audited.
	Copies         *int `json:"copies,omitempty"`
	CopiesRequired *int `json:"copiesRequired,omitempty"`
	// LastAudit is when the target was last audited, with the findings.
	LastAudit *time.Time       `json:"lastAudit,omitempty"`
	Findings  []checks.Finding `json:"findings"`
	// LastDrill is the newest drill's result (from the history); nil when none.
	LastDrill *DrillSummary `json:"lastDrill,omitempty"`
	// NextDrill is when the schedule runs the next drill; nil when the target has no schedule.
	NextDrill *time.Time `json:"nextDrill,omitempty"`
	// Running is the job running now ("drill", "audit"), empty when idle.
	Running string `json:"running,omitempty"`
}

// DrillSummary is a drill as the status list shows it; the full result is in the history.
type DrillSummary struct {
	ID         string    `json:"id"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	Status     Status    `json:"status"`
	Error      string    `json:"error,omitempty"`
	RTOMet     bool      `json:"rtoMet"`
	RTOSeconds float64   `json:"rtoSeconds"`
	SnapshotID string    `json:"snapshotId,omitempty"`
}

// Summarize is a drill result's summary.
func Summarize(r *DrillResult) *DrillSummary {
	if r == nil {
		return nil
	}
	s := &DrillSummary{ID: r.ID, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Status: r.Status, Error: r.Error,
		RTOMet: r.RTO.Met, RTOSeconds: r.RTO.ActualSeconds}
	if r.Snapshot != nil {
		s.SnapshotID = r.Snapshot.ID
	}
	return s
}
