package audit

import (
	"encoding/json"
	"slices"

	"github.com/firedrill/firedrill/checks"
)

// The JSON form of a Report (`firedrill audit --output json`) is a contract for machines.
// Schema version 1:
//
//	{
//	  "schemaVersion": 1,
//	  "generatedAt": "2026-11-20T03:00:00Z",        // the audit's clock, UTC
//	  "targets": [{
//	    "target": "orders",
//	    "findings": [{                                // one per check run, in AuditChecks order
//	      "target":   "orders",                       // repeated, so a finding stands alone
//	      "check":    "backup-age",                   // a policy.Check* name
//	      "name":     "backup-age",                   // the same, as checks.Finding spells it
//	      "status":   "pass" | "warn" | "fail" | "error",
//	      "message":  "one line: what was found and why",
//	      "reasons":  ["too-old"],                    // the Reason* codes; [] when it passed
//	      "cause":    "auth",                         // only with reason unreadable: why it could
//	                                                  // not be read: auth, network, not-found,
//	                                                  // permission, timeout (or configuration,
//	                                                  // interrupted, other)
//	      "evidence": {...},                          // the numbers behind the finding; never secrets
//	      "seconds":  0.012                           // how long the check took (omitted if zero)
//	    }]
//	  }]
//	}
//
// "targets" and "findings" are always arrays, "reasons" always an array and "evidence" always an
// object. Fields may be added within a schema version, never removed or renamed; a consumer
// should ignore fields it does not know. Exit codes follow the statuses: 1 if any finding
// failed, else 3 if any is an error (a source could not be read), else 0.

// MarshalJSON writes the report with every array present (never null).
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report // without this method
	p := plain(r)
	if p.Targets == nil {
		p.Targets = []TargetReport{}
	}
	return json.Marshal(p)
}

// findingJSON is one finding as machines read it: the finding's own fields, plus its target,
// its check under that name, and its reason codes.
type findingJSON struct {
	Target string `json:"target"`
	Check  string `json:"check"`
	checks.Finding
	Reasons  []string        `json:"reasons"`
	Cause    string          `json:"cause,omitempty"`
	Evidence checks.Evidence `json:"evidence"`
}

// MarshalJSON adds target, check and reasons to each finding (see Report). Decoding needs no
// counterpart: the added fields are derived, and encoding/json ignores them into checks.Finding.
func (t TargetReport) MarshalJSON() ([]byte, error) {
	out := struct {
		Target   string        `json:"target"`
		Findings []findingJSON `json:"findings"`
	}{Target: t.Target, Findings: make([]findingJSON, 0, len(t.Findings))}
	for _, f := range t.Findings {
		ev := f.Evidence
		if ev == nil {
			ev = checks.Evidence{}
		}
		out.Findings = append(out.Findings, findingJSON{Target: t.Target, Check: f.Check, Finding: f, Reasons: Reasons(f), Cause: FindingCause(f), Evidence: ev})
	}
	return json.Marshal(out)
}

// FindingCause is why a finding with reason unreadable could not read what it needed (the first
// cause when several sources failed differently; evidence.causes lists them all), "" otherwise.
func FindingCause(f checks.Finding) string {
	if !slices.Contains(Reasons(f), ReasonUnreadable) {
		return ""
	}
	if c, ok := f.Evidence["cause"].(string); ok && c != "" {
		return c
	}
	return CauseOther
}

// Reasons returns a finding's reason codes (the Reason* constants), empty when it passed.
func Reasons(f checks.Finding) []string {
	switch r := f.Evidence["reasons"].(type) {
	case []string:
		return append([]string{}, r...)
	case []any: // a finding decoded from JSON
		out := make([]string, 0, len(r))
		for _, x := range r {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return []string{}
}
