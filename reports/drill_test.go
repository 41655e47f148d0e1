package reports

import (
	"testing"

	"github.com/firedrill/firedrill/checks"
)

// The precedence, finding statuses → drill status: any fail ⇒ fail whatever errored; else any
// error (a finding, or a drill that could not complete) ⇒ error; else pass (warnings pass).
func TestFinalize(t *testing.T) {
	f := func(ss ...checks.Status) []checks.Finding {
		out := make([]checks.Finding, len(ss))
		for i, s := range ss {
			out[i] = checks.Finding{Check: "c", Status: s}
		}
		return out
	}
	tests := []struct {
		name   string
		status Status // what the drill decided before Finalize
		errMsg string
		checks []checks.Finding
		want   Status
	}{
		{"no findings", "", "", nil, StatusPass},
		{"all pass", "", "", f(checks.Pass, checks.Pass), StatusPass},
		{"a warning passes", "", "", f(checks.Pass, checks.Warn), StatusPass},
		{"fail", "", "", f(checks.Pass, checks.Fail), StatusFail},
		{"error", "", "", f(checks.Pass, checks.Error), StatusError},
		// Issue 8, item 0: amcheck fails, row-counts could not count: the drill failed.
		{"fail and error", "", "", f(checks.Fail, checks.Error), StatusFail},
		{"error then fail", "", "", f(checks.Error, checks.Warn, checks.Fail), StatusFail},
		{"drill error, no findings", StatusError, "while cloning: disk full", nil, StatusError},
		{"drill error, passing findings", StatusError, "interrupted: context canceled", f(checks.Pass), StatusError},
		// The drill errored after a proven failure: still a failure, its error kept.
		{"drill error after a failure", StatusError, "while stopping the throwaway server: timeout", f(checks.Fail, checks.Pass), StatusFail},
		{"drill error without a message", StatusError, "", f(checks.Pass), StatusError},
		{"already failed, passing findings", StatusFail, "", f(checks.Pass), StatusFail},
		{"passed before, error finding", StatusPass, "", f(checks.Error), StatusError},
		{"unknown finding status", "", "", f(checks.Status(9)), StatusError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &DrillResult{Status: tt.status, Error: tt.errMsg, Checks: tt.checks}
			r.Finalize()
			if r.Status != tt.want {
				t.Errorf("Finalize() status = %s, want %s", r.Status, tt.want)
			}
			if r.Error != tt.errMsg {
				t.Errorf("Finalize() changed the error to %q", r.Error)
			}
		})
	}
}

func TestOverall(t *testing.T) {
	tests := []struct {
		name string
		in   []Status
		want Status
	}{
		{"none", nil, StatusPass},
		{"pass", []Status{StatusPass, StatusPass}, StatusPass},
		{"error", []Status{StatusPass, StatusError}, StatusError},
		{"fail", []Status{StatusPass, StatusFail}, StatusFail},
		{"fail beats error", []Status{StatusError, StatusFail, StatusPass}, StatusFail},
		{"fail first", []Status{StatusFail, StatusError}, StatusFail},
		{"unknown is error", []Status{StatusPass, Status("weird")}, StatusError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Overall(tt.in...); got != tt.want {
				t.Errorf("Overall(%v) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
