package policy

import (
	"testing"

	"github.com/firedrill/firedrill/reports/compliance"
	"github.com/firedrill/firedrill/reports/metrics"
)

// reports spells out what it needs of the policy (it never imports audit): keep them equal.
func TestReportsAgreeWithThePolicy(t *testing.T) {
	if compliance.DefaultDrillEvery != DefaultDrillEvery {
		t.Errorf("compliance.DefaultDrillEvery %s, policy %s", compliance.DefaultDrillEvery, DefaultDrillEvery)
	}
	if len(metrics.AuditChecks) != len(AuditChecks) {
		t.Fatalf("metrics.AuditChecks %v, policy %v", metrics.AuditChecks, AuditChecks)
	}
	for i := range AuditChecks {
		if metrics.AuditChecks[i] != AuditChecks[i] {
			t.Errorf("metrics.AuditChecks %v, policy %v", metrics.AuditChecks, AuditChecks)
		}
	}
}
