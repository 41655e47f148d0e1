package retention

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/snapshot"
)

var now = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// snaps returns snapshots s0 (newest) .. s{n-1}, one day apart.
func snaps(n int) []snapshot.Metadata {
	out := make([]snapshot.Metadata, n)
	for i := range out {
		out[i] = snapshot.Metadata{ID: "s" + string(rune('0'+i)), TakenAt: now.Add(-time.Duration(i) * 24 * time.Hour).Add(-time.Minute)}
	}
	return out
}

func drill(id string, st reports.Status, daysAgo int) reports.DrillResult {
	return reports.DrillResult{Status: st, StartedAt: now.Add(-time.Duration(daysAgo) * 24 * time.Hour), Snapshot: &reports.SnapshotRef{ID: id}}
}

func kept(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.Snapshot.ID)
		}
	}
	return out
}

func TestPlan(t *testing.T) {
	cases := []struct {
		name   string
		n      int
		policy Policy
		drills []reports.DrillResult
		want   []string
	}{
		{"no rule keeps everything", 3, Policy{}, nil, []string{"s0", "s1", "s2"}},
		{"keepLast", 5, Policy{KeepLast: 2}, nil, []string{"s0", "s1"}},
		{"keepWithin", 5, Policy{KeepWithin: 48 * time.Hour}, nil, []string{"s0", "s1"}},
		{"either rule keeps", 5, Policy{KeepLast: 1, KeepWithin: 72 * time.Hour}, nil, []string{"s0", "s1", "s2"}},
		{"the only verified snapshot is kept", 5, Policy{KeepLast: 2}, []reports.DrillResult{drill("s3", reports.StatusPass, 2)}, []string{"s0", "s1", "s3"}},
		{"a verified snapshot already kept: no extra", 5, Policy{KeepLast: 2}, []reports.DrillResult{drill("s1", reports.StatusPass, 1), drill("s3", reports.StatusPass, 2)}, []string{"s0", "s1"}},
		{"the newest of several verified is kept", 6, Policy{KeepLast: 1}, []reports.DrillResult{drill("s4", reports.StatusPass, 3), drill("s2", reports.StatusPass, 1)}, []string{"s0", "s2"}},
		{"a snapshot whose last drill failed is not verified", 5, Policy{KeepLast: 1}, []reports.DrillResult{drill("s3", reports.StatusPass, 4), drill("s3", reports.StatusFail, 1)}, []string{"s0"}},
		{"a later pass after a failure verifies", 5, Policy{KeepLast: 1}, []reports.DrillResult{drill("s3", reports.StatusFail, 4), drill("s3", reports.StatusPass, 1)}, []string{"s0", "s3"}},
		{"drills of deleted snapshots are ignored", 3, Policy{KeepLast: 1}, []reports.DrillResult{drill("gone", reports.StatusPass, 1)}, []string{"s0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := snaps(tc.n)
			slices.Reverse(in) // Plan sorts
			got := kept(Plan(in, tc.policy, tc.drills, now))
			if !slices.Equal(got, tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
		})
	}
}

type memStore struct {
	snaps   []snapshot.Metadata
	deleted []string
	fail    error
}

func (m *memStore) List(context.Context) ([]snapshot.Metadata, error) { return m.snaps, nil }
func (m *memStore) Delete(_ context.Context, id string) error {
	if m.fail != nil {
		return m.fail
	}
	m.deleted = append(m.deleted, id)
	return nil
}

type memHistory struct {
	drills []reports.DrillResult
	err    error
}

func (h memHistory) List(context.Context, string) ([]reports.DrillResult, error) {
	return h.drills, h.err
}

func TestApply(t *testing.T) {
	st := &memStore{snaps: snaps(4)}
	plan, err := Apply(t.Context(), "orders", st, memHistory{drills: []reports.DrillResult{drill("s3", reports.StatusPass, 1)}}, Policy{KeepLast: 1}, now)
	if err != nil || len(plan) != 4 {
		t.Fatal(plan, err)
	}
	if !slices.Equal(st.deleted, []string{"s1", "s2"}) {
		t.Errorf("deleted %v, want [s1 s2]", st.deleted)
	}
	// No history, no deletion: retention cannot know which snapshot is proved.
	st = &memStore{snaps: snaps(4)}
	if _, err := Apply(t.Context(), "orders", st, memHistory{err: errors.New("disk gone")}, Policy{KeepLast: 1}, now); err == nil || len(st.deleted) != 0 {
		t.Errorf("err %v, deleted %v", err, st.deleted)
	}
	st = &memStore{snaps: snaps(3), fail: errors.New("denied")}
	if _, err := Apply(t.Context(), "orders", st, memHistory{}, Policy{KeepLast: 1}, now); err == nil {
		t.Error("a failed delete was not reported")
	}
}

// Each decision says which rule kept or let go the snapshot, with its numbers.
func TestPlanDetail(t *testing.T) {
	cases := []struct {
		name   string
		policy Policy
		drills []reports.DrillResult
		want   []string // details of s0..s3
	}{
		{"keepLast", Policy{KeepLast: 1}, nil,
			[]string{"keepLast 1: 1st newest", "keepLast 1: 2nd newest", "keepLast 1: 3rd newest", "keepLast 1: 4th newest"}},
		{"keepWithin", Policy{KeepWithin: 36 * time.Hour}, nil,
			[]string{"keepWithin 36h: 1m old", "keepWithin 36h: 24h01m old", "keepWithin 36h: 2d", "keepWithin 36h: 3d"}},
		{"both", Policy{KeepLast: 1, KeepWithin: 7 * 24 * time.Hour}, nil,
			[]string{"keepLast 1: 1st newest", "keepWithin 7d: 24h01m old", "keepWithin 7d: 2d", "keepWithin 7d: 3d"}},
		{"verified", Policy{KeepLast: 1}, []reports.DrillResult{drill("s3", reports.StatusPass, 1)},
			[]string{"keepLast 1: 1st newest", "keepLast 1: 2nd newest", "keepLast 1: 3rd newest", ReasonVerified}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := Plan(snaps(4), tc.policy, tc.drills, now)
			for i, d := range plan {
				if !strings.HasPrefix(d.Detail, tc.want[i]) {
					t.Errorf("%s: detail %q, want %q…", d.Snapshot.ID, d.Detail, tc.want[i])
				}
			}
		})
	}
}

// Report lists what Apply deleted, with the reason, and what failed.
func TestReport(t *testing.T) {
	st := &memStore{snaps: snaps(3)}
	p := Policy{KeepLast: 1}
	plan, err := Apply(t.Context(), "orders", st, memHistory{}, p, now)
	rep := Report(p, plan, err)
	if rep.Rules != "keepLast 1" || rep.Kept != 1 || len(rep.Deleted) != 2 || rep.Error != "" {
		t.Fatalf("report = %+v", rep)
	}
	if d := rep.Deleted[1]; d.ID != "s2" || d.Reason != "keepLast 1: 3rd newest" || !d.TakenAt.Equal(snaps(3)[2].TakenAt) {
		t.Errorf("deletion = %+v", d)
	}
	st = &memStore{snaps: snaps(3), fail: errors.New("denied")}
	plan, err = Apply(t.Context(), "orders", st, memHistory{}, p, now)
	if rep := Report(p, plan, err); len(rep.Deleted) != 0 || !strings.Contains(rep.Error, "denied") {
		t.Errorf("failed deletions reported as %+v", rep)
	}
	if Report(Policy{}, nil, nil) != nil {
		t.Error("a target without rules has a retention report")
	}
}
