package main

import (
	"testing"

	"github.com/firedrill/firedrill/audit"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// The precedence end to end: finding statuses → drill (and audit) status → exit code. Any
// fail ⇒ exit 1 whatever errored; else any error ⇒ exit 3; else 0 (warnings pass).
func TestPrecedenceToExitCode(t *testing.T) {
	tests := []struct {
		name     string
		findings []checks.Status
		drillErr string // the drill could not complete
		want     int
	}{
		{"all pass", []checks.Status{checks.Pass, checks.Pass}, "", exitOK},
		{"warn passes", []checks.Status{checks.Warn}, "", exitOK},
		{"fail", []checks.Status{checks.Pass, checks.Fail}, "", exitFailed},
		{"error", []checks.Status{checks.Pass, checks.Error}, "", exitEnvError},
		{"fail and error (issue 8, item 0)", []checks.Status{checks.Fail, checks.Error, checks.Warn}, "", exitFailed},
		{"error then fail", []checks.Status{checks.Error, checks.Fail}, "", exitFailed},
		{"drill error after a failure", []checks.Status{checks.Fail}, "interrupted: context canceled", exitFailed},
		{"drill error alone", []checks.Status{checks.Pass}, "while cloning: disk full", exitEnvError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs []checks.Finding
			for _, s := range tt.findings {
				fs = append(fs, checks.Finding{Check: "c", Status: s})
			}
			res := &reports.DrillResult{Checks: fs}
			if tt.drillErr != "" {
				res.Status, res.Error = reports.StatusError, tt.drillErr
			}
			res.Finalize()
			if got := exitCode(resultsErr([]*reports.DrillResult{res})); got != tt.want {
				t.Errorf("drill: exit %d (status %s), want %d", got, res.Status, tt.want)
			}
			if tt.drillErr == "" {
				rep := &audit.Report{Targets: []audit.TargetReport{{Target: "a", Findings: fs}}}
				if got := exitCode(auditErr(rep)); got != tt.want {
					t.Errorf("audit: exit %d, want %d", got, tt.want)
				}
			}
		})
	}
	// Several drills (or audit targets): one failed, another could not check.
	failed := &reports.DrillResult{Checks: []checks.Finding{{Check: "amcheck", Status: checks.Fail}}}
	errored := &reports.DrillResult{Status: reports.StatusError, Error: "unreachable"}
	failed.Finalize()
	errored.Finalize()
	if got := exitCode(resultsErr([]*reports.DrillResult{errored, failed})); got != exitFailed {
		t.Errorf("two drills, error then fail: exit %d, want %d", got, exitFailed)
	}
	rep := &audit.Report{Targets: []audit.TargetReport{
		{Target: "a", Findings: []checks.Finding{{Check: "backup-age", Status: checks.Error}}},
		{Target: "b", Findings: []checks.Finding{{Check: "wal-archiving", Status: checks.Fail}}},
	}}
	if got := exitCode(auditErr(rep)); got != exitFailed || rep.CouldNotCheck() || !rep.Failed() {
		t.Errorf("audit, one target errored and one failed: exit %d (failed %v, could not check %v), want %d", got, rep.Failed(), rep.CouldNotCheck(), exitFailed)
	}
}
