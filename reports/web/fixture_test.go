package web

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// now is the fixed clock of every test: the pages' relative times are computed from it.
var now = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

// fakeSource is a StatusSource over fixed values.
type fakeSource struct {
	status *reports.ServeStatus
	drills map[string]*reports.DrillResult // by target + "/" + id
	err    error
}

func (f *fakeSource) Status(context.Context) (*reports.ServeStatus, error) {
	return f.status, f.err
}

func (f *fakeSource) Drill(_ context.Context, target, id string) (*reports.DrillResult, error) {
	if f.err != nil {
		return nil, f.err
	}
	d, ok := f.drills[target+"/"+id]
	if !ok {
		return nil, fmt.Errorf("while reading drill %s of %s: %w", id, target, fs.ErrNotExist)
	}
	return d, nil
}

func ptr[T any](v T) *T { return &v }

// hostile is a finding message a database could have put in front of us.
const hostile = `row count 0 < 10 in "public.<script>alert(1)</script>" & friends`

func fixtureDrill() *reports.DrillResult {
	started := now.Add(-2 * time.Hour)
	return &reports.DrillResult{
		SchemaVersion: reports.SchemaVersion, ID: "20250314T100000Z-ab12", Target: "orders", Engine: "postgres",
		StartedAt: started, FinishedAt: started.Add(95 * time.Second), Status: reports.StatusFail,
		Error:    "check rowcount failed",
		Snapshot: &reports.SnapshotRef{ID: "snap-0042", TakenAt: started.Add(-3 * time.Hour), Driver: "btrfs", EngineVersion: "PostgreSQL 15.8", SizeBytes: 3 << 30, AgeSeconds: 3 * 3600},
		RTO:      reports.RTO{TargetSeconds: 3600, ActualSeconds: 81.5, Met: true},
		Phases: []reports.Phase{
			{Name: "clone", Seconds: 1.2, CountsTowardRTO: true},
			{Name: "recovery", Seconds: 62.3, CountsTowardRTO: true},
			{Name: "checks", Seconds: 18, CountsTowardRTO: true},
			{Name: "teardown", Seconds: 13.5},
		},
		Checks: []checks.Finding{
			{Check: "amcheck", Status: checks.Pass, Message: "42 indexes verified", Seconds: 12.5, Evidence: checks.Evidence{"indexes": 42}},
			{Check: "rowcount", Status: checks.Fail, Message: hostile, Evidence: checks.Evidence{"query": "SELECT count(*) FROM \"<script>\"", "threshold": 10, "got": 0}},
		},
		RecoveryPoint: ptr(started.Add(-3*time.Hour - 5*time.Second)), RecoveryPointSource: "freshness",
		Runtime:    &reports.Runtime{Kind: "kubernetes", Namespace: "firedrill-scratch", Pod: "drill-ab12", Node: "node-1", EngineVersion: "PostgreSQL 15.8"},
		Milestones: []reports.Milestone{{Name: "pod scheduled", At: started.Add(3 * time.Second), Source: "kubernetes"}},
		Notes:      []string{"the snapshot had no backup label: drilled as crash-consistent"},
	}
}

func fixtureStatus() *reports.ServeStatus {
	d := fixtureDrill()
	lastAudit := now.Add(-5 * time.Minute)
	return &reports.ServeStatus{
		SchemaVersion: 1, GeneratedAt: now, ConfigFile: "/etc/firedrill/config.yaml",
		ConfigLoadedAt: now.Add(-26 * time.Hour),
		ReloadError:    `/etc/firedrill/config.yaml:12: field "rpoo" not found in type policy.Target <b>`,
		Targets: []reports.TargetStatus{
			{
				Target: "orders", Engine: "postgres", RPOSeconds: 86400, RTOSeconds: 3600,
				RPOStatus: ptr(checks.Pass), RTOStatus: ptr(checks.Pass), BackupAgeSeconds: ptr(3*3600 + 300.0),
				Copies: ptr(2), CopiesRequired: ptr(3), LastAudit: &lastAudit,
				Findings: []checks.Finding{
					checks.Passf("backup-age", nil, "newest backup is 3h05m old"),
					checks.Failf("copies", checks.Evidence{"copies": 2, "required": 3}, "2 copies, the policy needs 3 <offsite>"),
				},
				LastDrill: reports.Summarize(d), NextDrill: ptr(now.Add(17*24*time.Hour + 3*time.Hour)),
			},
			{
				Target: "sessions-eu", Engine: "redis", RPOSeconds: 3600, RTOSeconds: 600,
				RPOStatus: ptr(checks.Fail), BackupAgeSeconds: ptr(7200.0), LastAudit: &lastAudit,
				Findings: []checks.Finding{checks.Failf("backup-age", nil, "newest backup is 2h old, RPO 1h")},
				Running:  "audit",
			},
			{Target: "new", Engine: "mariadb", RPOSeconds: 3600, RTOSeconds: 1800},
		},
	}
}

func fixtureSource() *fakeSource {
	d := fixtureDrill()
	return &fakeSource{status: fixtureStatus(), drills: map[string]*reports.DrillResult{d.Target + "/" + d.ID: d}}
}
