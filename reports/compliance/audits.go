package compliance

import (
	"encoding/json"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports/evidence"
)

// auditResult is one check's outcome in one audit record.
type auditResult struct {
	s       Stored
	status  checks.Status
	message string
	ev      []checks.Finding
}

// checkResults returns, for each audit record that ran check, its worst finding of that check.
func checkResults(rs []Stored, check string) []auditResult {
	var out []auditResult
	for _, s := range rs {
		if s.Record.Kind != evidence.KindAudit {
			continue
		}
		var fs []checks.Finding
		for _, f := range s.Record.Audit {
			if f.Check == check {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			continue
		}
		worst := checks.Worst(fs)
		a := auditResult{s: s, status: worst, ev: fs}
		for _, f := range fs {
			if f.Status == worst {
				a.message = f.Message
				break
			}
		}
		out = append(out, a)
	}
	return out
}

// episodes groups consecutive audits whose result is a problem. An audit that could not check
// (error) neither opens nor ends an episode: it proves nothing either way.
func episodes(results []auditResult, problem func(checks.Status) bool) []Episode {
	out := []Episode{}
	var cur *Episode
	for _, a := range results {
		at := a.s.Record.StartedAt.UTC()
		switch {
		case problem(a.status):
			if cur == nil {
				cur = &Episode{From: at, Worst: a.status.String(), Message: a.message, First: link(a.s), Ongoing: true}
			}
			cur.To, cur.Audits = at, cur.Audits+1
			if checks.Worst([]checks.Finding{{Status: a.status}, {Status: statusOf(cur.Worst)}}) == a.status {
				cur.Worst, cur.Message = a.status.String(), a.message
			}
		case a.status == checks.Error:
		default:
			if cur != nil {
				cur.To, cur.Ongoing = at, false
				cur.Seconds = cur.To.Sub(cur.From).Seconds()
				out = append(out, *cur)
				cur = nil
			}
		}
	}
	if cur != nil {
		cur.Seconds = cur.To.Sub(cur.From).Seconds()
		out = append(out, *cur)
	}
	return out
}

func statusOf(s string) checks.Status {
	var st checks.Status
	_ = st.UnmarshalText([]byte(s))
	return st
}

// audits fills in what the target's audit records show: RPO breaches, WAL archiving incidents,
// the 3-2-1 status over time, and the backup age (and size, without snapshot records) series.
func audits(t *TargetReport, rs []Stored) {
	age := checkResults(rs, checkBackupAge)
	t.RPOBreaches = episodes(age, func(s checks.Status) bool { return s == checks.Fail })
	t.WALIncidents = episodes(checkResults(rs, checkWALArchiving), func(s checks.Status) bool {
		return s == checks.Fail || s == checks.Warn
	})
	for _, a := range age {
		if v, ok := maxSourceValue(a.ev, "ageSeconds"); ok {
			t.Charts.BackupAgeSeconds = append(t.Charts.BackupAgeSeconds, Point{At: a.s.Record.StartedAt.UTC(), Value: v, Status: a.status.String()})
		}
	}
	if len(t.Charts.BackupSizeBytes) == 0 {
		for _, a := range checkResults(rs, checkBackupSize) {
			if v, ok := maxSourceValue(a.ev, "newestBytes"); ok {
				t.Charts.BackupSizeBytes = append(t.Charts.BackupSizeBytes, Point{At: a.s.Record.StartedAt.UTC(), Value: v, Status: a.status.String()})
			}
		}
	}
	for _, a := range checkResults(rs, checkCopies) {
		at := a.s.Record.StartedAt.UTC()
		n := len(t.Copies)
		if n > 0 && t.Copies[n-1].Status == a.status.String() {
			t.Copies[n-1].To, t.Copies[n-1].Audits = at, t.Copies[n-1].Audits+1
			continue
		}
		if n > 0 {
			t.Copies[n-1].To = at
		}
		t.Copies = append(t.Copies, StatusPeriod{From: at, To: at, Status: a.status.String(), Message: a.message, Audits: 1})
	}
}

// maxSourceValue is the largest number under key among the findings' evidence "sources" rows
// (the backup-age and backup-size checks keep one row per backup source). The evidence is
// re-read through JSON so that it reads the same fresh from a check or from a stored record.
func maxSourceValue(fs []checks.Finding, key string) (float64, bool) {
	best, found := 0.0, false
	for _, f := range fs {
		b, err := json.Marshal(f.Evidence["sources"])
		if err != nil {
			continue
		}
		var rows []map[string]any
		if json.Unmarshal(b, &rows) != nil {
			continue
		}
		for _, row := range rows {
			if v, ok := row[key].(float64); ok && (!found || v > best) {
				best, found = v, true
			}
		}
	}
	return best, found
}

// The audit's check names (audit/policy.AuditChecks, spelled out here because reports never
// imports audit: reports/deps_test.go).
const (
	checkBackupAge    = "backup-age"
	checkWALArchiving = "wal-archiving"
	checkBackupSize   = "backup-size"
	checkCopies       = "copies-3-2-1"
)
