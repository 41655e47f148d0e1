package audit

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/snapshot"
)

func TestCheckBackupIntegrity(t *testing.T) {
	repo := func(snaps ...snapshot.Metadata) RepositoryInventory {
		return RepositoryInventory{Source: &SourceState{Name: "snapshots", Where: "snapshot repository /r", Family: FamilySnapshots}, Snapshots: snaps}
	}
	good := snapshot.Metadata{ID: "20261120T030000Z-aaaaaa", TakenAt: day(0), Status: snapshot.StatusComplete}
	damaged := snapshot.Metadata{ID: "20261121T030000Z-bbbbbb", TakenAt: day(1), Status: snapshot.StatusDamaged, Reason: "meta.json is not valid metadata"}
	foreign := snapshot.Metadata{ID: "20261119T030000Z-cccccc", TakenAt: day(-1), Status: snapshot.StatusForeign, Reason: `meta.json names target "billing", not "orders"`}
	unreadable := RepositoryInventory{Source: &SourceState{Name: "snapshots", Where: "snapshot repository /r",
		Err: &SourceError{Source: "snapshots", Where: "/r", Op: "listing", Err: os.ErrPermission}}}
	tests := []struct {
		name   string
		inv    []RepositoryInventory
		status checks.Status
		reason string
		msg    string
	}{
		{"every snapshot complete", []RepositoryInventory{repo(good)}, checks.Pass, "", "every snapshot is complete: snapshots 1"},
		{"damaged newest", []RepositoryInventory{repo(damaged, good)}, checks.Fail, ReasonDamaged, "newest snapshot 20261121T030000Z-bbbbbb is damaged: meta.json is not valid metadata"},
		{"foreign", []RepositoryInventory{repo(good, foreign)}, checks.Fail, ReasonForeign, `names target "billing"`},
		{"unreadable repository", []RepositoryInventory{unreadable}, checks.Error, ReasonUnreadable, "could not read snapshots"},
		{"a proven failure outranks an unreadable one", []RepositoryInventory{unreadable, repo(damaged)}, checks.Fail, ReasonDamaged, "is damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := CheckBackupIntegrity(tt.inv)
			if f.Check != policy.CheckBackupIntegrity {
				t.Errorf("check = %s", f.Check)
			}
			wantFinding(t, f, tt.status, tt.reason, tt.msg)
		})
	}
}

// The auditor judges the target's own local repository: a truncated meta.json fails
// backup-integrity; an empty repository has nothing to judge (backup-age says so).
func TestAuditorBackupIntegrity(t *testing.T) {
	dir := t.TempDir()
	cfg, err := policy.Parse(filepath.Join(t.TempDir(), "firedrill.yaml"), []byte(`targets:
  - name: orders
    connection:
      dsn: "postgres://x@127.0.0.1:1/postgres"
    snapshot:
      local:
        dataDir: /nonexistent/data
        repository: `+dir+`
    objectives:
      rpo: 1h
    audit:
      skip: [wal-archiving, backup-size, copies-3-2-1, drill-recency]
`))
	if err != nil {
		t.Fatal(err)
	}
	find := func() (checks.Finding, bool) {
		rep := (&Auditor{Now: func() time.Time { return t0 }}).Audit(t.Context(), cfg, cfg.Targets)
		for _, f := range rep.Targets[0].Findings {
			if f.Check == policy.CheckBackupIntegrity {
				return f, true
			}
		}
		return checks.Finding{}, false
	}
	if f, ok := find(); ok {
		t.Errorf("an empty repository got %s %q, want no backup-integrity finding", f.Status, f.Message)
	}
	id := "20261120T020000Z-abcdef"
	if err := os.MkdirAll(filepath.Join(dir, id), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id, "meta.json"), []byte(`{"id": "`+id+`", "tar`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, ok := find()
	if !ok {
		t.Fatal("no backup-integrity finding for a repository with a damaged snapshot")
	}
	wantFinding(t, f, checks.Fail, ReasonDamaged, id+" is damaged")
}
