package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

var t0 = time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)

func day(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }

// state builds a listed source from backups, as Summarize would.
func state(name string, bs ...Backup) *SourceState {
	s := NewSummary(name, 8, 1)
	for _, b := range bs {
		s.Add(b)
	}
	return &SourceState{Name: name, Where: "mem://" + name, Family: FamilyObjects, Media: policy.MediaObjectStorage, Summary: s}
}

func reasons(f checks.Finding) []string {
	r, _ := f.Evidence["reasons"].([]string)
	return r
}

func wantFinding(t *testing.T, f checks.Finding, status checks.Status, reason, msg string) {
	t.Helper()
	if f.Status != status {
		t.Errorf("status = %s, want %s (%s)", f.Status, status, f.Message)
	}
	if reason != "" && !slices.Contains(reasons(f), reason) {
		t.Errorf("reasons = %v, want %s (%s)", reasons(f), reason, f.Message)
	}
	if reason == "" && len(reasons(f)) > 0 {
		t.Errorf("reasons = %v, want none (%s)", reasons(f), f.Message)
	}
	if msg != "" && !strings.Contains(f.Message, msg) {
		t.Errorf("message %q does not contain %q", f.Message, msg)
	}
}

func TestSummaryKeepsNewestInBoundedMemory(t *testing.T) {
	s := NewSummary("s", 3, 10)
	for i := range 1000 {
		size := int64(100)
		if i == 999 {
			size = 0 // the newest is broken: the newest good one is the one before
		}
		s.Add(Backup{Key: fmt.Sprintf("k%04d", i), Time: t0.Add(time.Duration(i) * time.Minute), Size: size})
	}
	if s.Count != 1000 || len(s.Newest) != 3 {
		t.Fatalf("count %d, kept %d", s.Count, len(s.Newest))
	}
	if got := []string{s.Newest[0].Key, s.Newest[1].Key, s.Newest[2].Key}; !slices.Equal(got, []string{"k0999", "k0998", "k0997"}) {
		t.Errorf("newest = %v", got)
	}
	if s.NewestGood == nil || s.NewestGood.Key != "k0998" {
		t.Errorf("newest good = %+v", s.NewestGood)
	}
	// Out of order input gives the same result.
	r := NewSummary("r", 2, 1)
	for _, i := range []int{5, 1, 9, 3, 7} {
		r.Add(Backup{Key: fmt.Sprint(i), Time: t0.Add(time.Duration(i) * time.Hour), Size: 1})
	}
	if r.Newest[0].Key != "9" || r.Newest[1].Key != "7" {
		t.Errorf("out of order: %+v", r.Newest)
	}
}

func TestCheckBackupAge(t *testing.T) {
	now := day(3)
	rpo := 24 * time.Hour
	unreadable := &SourceState{Name: "gone", Where: "s3://b/p", Err: &SourceError{Source: "gone", Where: "s3://b/p", Op: "listing", Err: fmt.Errorf("boom: %w", ErrCredentials)}}
	tests := []struct {
		name    string
		sources []*SourceState
		status  checks.Status
		reason  string
		msg     string
	}{
		{"fresh", []*SourceState{state("dumps", Backup{Key: "d3", Time: day(3).Add(-time.Hour), Size: 10})}, checks.Pass, "", "dumps 1h00m ago"},
		{"too old", []*SourceState{state("dumps", Backup{Key: "d1", Time: day(1), Size: 10})}, checks.Fail, ReasonTooOld, "d1 is 2d00h old (RPO 24h)"},
		{"newest is empty, the good one is old", []*SourceState{state("dumps", Backup{Key: "d1", Time: day(1), Size: 10}, Backup{Key: "d3", Time: day(3), Size: 0})}, checks.Fail, ReasonTooOld, "d1"},
		{"none", []*SourceState{state("dumps")}, checks.Fail, ReasonNoBackup, "no backups"},
		{"only empty ones", []*SourceState{state("dumps", Backup{Key: "d3", Time: day(3), Size: 0})}, checks.Fail, ReasonNoBackup, "none of 1"},
		{"unreadable", []*SourceState{unreadable}, checks.Error, ReasonUnreadable, "could not read gone (s3://b/p): auth"},
		{"fail wins over unreadable", []*SourceState{unreadable, state("dumps")}, checks.Fail, ReasonNoBackup, ""},
		{"exactly the RPO is within it", []*SourceState{state("dumps", Backup{Key: "d2", Time: day(2), Size: 10})}, checks.Pass, "", ""},
		// Issue 17 item 1: an object dated a year ahead must not stand in for the newest backup.
		{"a future-dated object does not hide stale backups", []*SourceState{futureState("dumps", now, 5*time.Minute,
			Backup{Key: "d-3h", Time: now.Add(-3 * time.Hour), Size: 10}, Backup{Key: "d-4d", Time: now.Add(-96 * time.Hour), Size: 10},
			Backup{Key: "skewed.dump", Time: now.Add(365 * 24 * time.Hour), Size: 10})}, checks.Warn, ReasonFutureDated, "skewed.dump is 365d00h ahead, beyond the 5m0s tolerance"},
		{"future-dated and too old", []*SourceState{futureState("dumps", now, 5*time.Minute,
			Backup{Key: "d-30h", Time: now.Add(-30 * time.Hour), Size: 10}, Backup{Key: "skewed.dump", Time: now.Add(365 * 24 * time.Hour), Size: 10})},
			checks.Fail, ReasonTooOld, "d-30h is 30h00m old"},
		{"ahead within the tolerance counts as new", []*SourceState{futureState("dumps", now, 5*time.Minute,
			Backup{Key: "d+2m", Time: now.Add(2 * time.Minute), Size: 10})}, checks.Pass, "", "dumps 0s ago"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := CheckBackupAge(tt.sources, rpo, now)
			wantFinding(t, f, tt.status, tt.reason, tt.msg)
			if f.Check != policy.CheckBackupAge {
				t.Errorf("check = %s", f.Check)
			}
		})
	}
}

// futureState is a listed source whose summary sets aside backups dated past now+tol.
func futureState(name string, now time.Time, tol time.Duration, bs ...Backup) *SourceState {
	s := NewSummary(name, 8, 1).NotAfter(now.Add(tol))
	for _, b := range bs {
		s.Add(b)
	}
	return &SourceState{Name: name, Where: "mem://" + name, Family: FamilyObjects, Media: policy.MediaObjectStorage, Summary: s}
}

func TestFutureDatedNeverNewest(t *testing.T) {
	now := day(3)
	s := NewSummary("s", 3, 1).NotAfter(now.Add(time.Minute))
	s.Add(Backup{Key: "old", Time: day(1), Size: 10})
	s.Add(Backup{Key: "future", Time: now.Add(time.Hour), Size: 10})
	s.Add(Backup{Key: "further", Time: now.Add(2 * time.Hour), Size: 10})
	if s.NewestGood == nil || s.NewestGood.Key != "old" || len(s.Newest) != 1 || s.Newest[0].Key != "old" {
		t.Errorf("newest = %+v, newest good = %+v; want only old", s.Newest, s.NewestGood)
	}
	if s.Future != 2 || s.FutureNewest == nil || s.FutureNewest.Key != "further" || s.Count != 1 {
		t.Errorf("future = %d %+v, count %d", s.Future, s.FutureNewest, s.Count)
	}
	// backup-size judges the newest real backup, not the future one.
	f := CheckBackupSize([]*SourceState{{Name: "s", Where: "mem://s", Summary: s}}, policy.SizeAudit{MinBytes: 1, MaxDrop: 0.5, MaxGrowth: 1, History: 3})
	if f.Evidence["sources"].([]map[string]any)[0]["newest"] != "old" {
		t.Errorf("backup-size judged %v", f.Evidence["sources"])
	}
}

func TestCheckBackupSize(t *testing.T) {
	spec := policy.SizeAudit{MinBytes: 100, MaxDrop: 0.5, MaxGrowth: 1.0, History: 3}
	hist := func(sizes ...int64) *SourceState {
		var bs []Backup
		for i, n := range sizes {
			bs = append(bs, Backup{Key: fmt.Sprintf("d%d", i), Time: day(i), Size: n})
		}
		return state("dumps", bs...)
	}
	tests := []struct {
		name   string
		src    *SourceState
		status checks.Status
		reason string
		msg    string
	}{
		{"steady", hist(1000, 1010, 990, 1005), checks.Pass, "", "median 1000"},
		{"zero-byte newest", hist(1000, 1000, 0), checks.Fail, ReasonZeroByte, "d2 is zero bytes"},
		{"below the floor", hist(1000, 1000, 50), checks.Fail, ReasonBelowFloor, "below the floor of 100"},
		{"half the size fails", hist(1000, 1000, 1000, 500), checks.Fail, ReasonSizeDrop, "50% below the median 1000 B of the previous 3 (max drop 50%; sizes 1000 B, 1000 B, 1000 B)"},
		{"a 40% drop passes", hist(1000, 1000, 1000, 600), checks.Pass, "", ""},
		{"only the last History count", hist(10, 10, 10, 1000, 1000, 1000, 990), checks.Pass, "", ""},
		{"broken predecessors do not set the norm", hist(1000, 0, 1000, 1000, 980), checks.Pass, "", ""},
		{"double is a growth warning", hist(1000, 1000, 2000), checks.Warn, ReasonSizeGrowth, "100% above"},
		{"first backup", hist(1000), checks.Pass, "", "no earlier backup"},
		{"no backups", hist(), checks.Fail, ReasonNoBackup, ""},
		{"storage reports no size", unknownNewest(hist(1000, 1000, 0)), checks.Warn, ReasonSizeUnknown, "reports no size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFinding(t, CheckBackupSize([]*SourceState{tt.src}, spec), tt.status, tt.reason, tt.msg)
		})
	}
}

// unknownNewest marks a source's newest backup as one whose size the storage did not report.
func unknownNewest(s *SourceState) *SourceState {
	s.Summary.Newest[0].SizeUnknown = true
	return s
}

// A snapshot whose size the storage does not report is not an empty one: it still counts as
// the newest good backup for the age rule.
func TestSummaryCountsUnknownSizeAsGood(t *testing.T) {
	s := NewSummary("snapshots", 3, 1)
	s.Add(Backup{Key: "old", Time: day(0), Size: 1000})
	s.Add(Backup{Key: "new", Time: day(1), Size: 0, SizeUnknown: true})
	if s.NewestGood == nil || s.NewestGood.Key != "new" {
		t.Errorf("NewestGood = %+v, want the newest snapshot", s.NewestGood)
	}
}

type fakeHistory struct {
	results []reports.DrillResult
	err     error
}

func (h fakeHistory) List(context.Context, string) ([]reports.DrillResult, error) {
	return h.results, h.err
}

func TestCheckDrillRecency(t *testing.T) {
	every := 31 * 24 * time.Hour
	now := day(40)
	drill := func(id string, d int, st reports.Status, met bool) reports.DrillResult {
		return reports.DrillResult{ID: id, Status: st, StartedAt: day(d), FinishedAt: day(d).Add(5 * time.Minute),
			RTO: reports.RTO{TargetSeconds: 600, ActualSeconds: 300, Met: met}}
	}
	tests := []struct {
		name    string
		h       fakeHistory
		status  checks.Status
		reason  string
		message string
	}{
		{"recent pass", fakeHistory{results: []reports.DrillResult{drill("a", 39, reports.StatusPass, true)}}, checks.Pass, "", "RTO met"},
		{"no drills", fakeHistory{}, checks.Fail, ReasonNoDrill, "no drill recorded"},
		{"too old", fakeHistory{results: []reports.DrillResult{drill("a", 5, reports.StatusPass, true)}}, checks.Fail, ReasonDrillTooOld, "drills every 31d"},
		{"never passed", fakeHistory{results: []reports.DrillResult{drill("b", 39, reports.StatusFail, true)}}, checks.Fail, ReasonNoPassingDrill, ""},
		{"RTO missed", fakeHistory{results: []reports.DrillResult{drill("b", 39, reports.StatusFail, false), drill("a", 30, reports.StatusPass, true)}}, checks.Fail, ReasonRTOMissed, "missed the RTO"},
		{"last failed, earlier pass recent", fakeHistory{results: []reports.DrillResult{drill("b", 39, reports.StatusFail, true), drill("a", 30, reports.StatusPass, true)}}, checks.Warn, ReasonLastDrillFail, ""},
		{"an errored drill measured no RTO", fakeHistory{results: []reports.DrillResult{drill("b", 39, reports.StatusError, false), drill("a", 30, reports.StatusPass, true)}}, checks.Warn, ReasonLastDrillFail, "could not run"},
		{"RTO missed by a fraction of a second", fakeHistory{results: []reports.DrillResult{{ID: "c", Status: reports.StatusFail, StartedAt: day(39), FinishedAt: day(39),
			RTO: reports.RTO{TargetSeconds: 0.001, ActualSeconds: 1.42}}}}, checks.Fail, ReasonRTOMissed, "1.4s to verified, objective 1ms"},
		{"history unreadable", fakeHistory{err: errors.New("permission denied")}, checks.Error, ReasonUnreadable, "could not read the drill history"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFinding(t, CheckDrillRecency(t.Context(), tt.h, "orders", every, now), tt.status, tt.reason, tt.message)
		})
	}
}
