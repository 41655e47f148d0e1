package audit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
)

func TestSegmentEnd(t *testing.T) {
	const mb16 = 16 << 20
	tests := []struct {
		name string
		seg  int64
		want int64
		ok   bool
	}{
		{"000000010000000000000001", mb16, 2 * mb16, true},
		{"0000000100000001000000FF", mb16, 0x100000000 + 256*mb16, true},
		{"00000002000000000000000A.partial", mb16, 11 * mb16, true},
		{"000000010000000000000003", 64 << 20, 4 * (64 << 20), true},
		{"00000002.history", mb16, 0, false},
		{"", mb16, 0, false},
	}
	for _, tt := range tests {
		got, ok := segmentEnd(tt.name, tt.seg)
		if got != tt.want || ok != tt.ok {
			t.Errorf("segmentEnd(%s, %d) = %d, %v; want %d, %v", tt.name, tt.seg, got, ok, tt.want, tt.ok)
		}
	}
}

func TestEvaluateWAL(t *testing.T) {
	now := t0
	rpo := time.Hour
	spec := policy.WALAudit{MaxReady: 16, IdleWALBytes: 8192}
	at := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	n := func(v int64) *int64 { return &v }
	ready := func(v int) *int { return &v }
	ok := func() ArchiverState {
		return ArchiverState{ArchiveMode: "on", ArchiveCommand: "cp %p /a/%f", SegmentBytes: 16 << 20, ArchivedCount: 5,
			LastArchivedWAL: "000000010000000000000005", LastArchivedTime: at(10 * time.Minute), WALBytesSinceArchived: n(1 << 20), Ready: ready(0)}
	}
	tests := []struct {
		name   string
		mod    func(*ArchiverState)
		spec   func(*policy.WALAudit)
		status checks.Status
		reason string
		msg    string
	}{
		{"works", nil, nil, checks.Pass, "", "archiving works: last segment 000000010000000000000005 archived 10m ago, 0 waiting"},
		{"archive_mode off", func(s *ArchiverState) { s.ArchiveMode = "off" }, nil, checks.Fail, ReasonArchivingOff, ""},
		{"no command", func(s *ArchiverState) { s.ArchiveCommand = "" }, nil, checks.Fail, ReasonNoArchiveCommand, ""},
		{"a library is enough", func(s *ArchiverState) { s.ArchiveCommand, s.ArchiveLibrary = "", "basic_archive" }, nil, checks.Pass, "", ""},
		{"failing since the last success", func(s *ArchiverState) {
			s.FailedCount, s.LastFailedWAL, s.LastFailedTime = 3, "000000010000000000000006", at(time.Minute)
		}, nil, checks.Fail, ReasonArchiveFailing, "3 failures, the last for 000000010000000000000006"},
		{"an old failure, since recovered", func(s *ArchiverState) {
			s.FailedCount, s.LastFailedWAL, s.LastFailedTime = 3, "000000010000000000000004", at(time.Hour)
		}, nil, checks.Pass, "", ""},
		{"never succeeded", func(s *ArchiverState) {
			s.ArchivedCount, s.LastArchivedWAL, s.LastArchivedTime, s.WALBytesSinceArchived = 0, "", nil, nil
			s.FailedCount, s.LastFailedTime = 1, at(time.Minute)
		}, nil, checks.Fail, ReasonArchiveFailing, "last success never"},
		{"old archive with new WAL since", func(s *ArchiverState) { s.LastArchivedTime = at(2 * time.Hour) }, nil, checks.Fail, ReasonArchiveTooOld, "1048576 bytes of WAL"},
		{"old archive on an idle server", func(s *ArchiverState) {
			s.LastArchivedTime, s.WALBytesSinceArchived = at(48*time.Hour), n(120)
		}, nil, checks.Pass, "", "idle: 120 bytes"},
		{"old archive, WAL position unknown", func(s *ArchiverState) {
			s.LastArchivedTime, s.WALBytesSinceArchived, s.LastArchivedWAL = at(2*time.Hour), nil, "00000002.history"
		}, nil, checks.Fail, ReasonArchiveTooOld, ""},
		{"nothing archived yet", func(s *ArchiverState) {
			s.ArchivedCount, s.LastArchivedWAL, s.LastArchivedTime, s.WALBytesSinceArchived = 0, "", nil, nil
		}, nil, checks.Warn, ReasonNeverArchived, ""},
		{"ready backlog", func(s *ArchiverState) { s.Ready = ready(17) }, nil, checks.Fail, ReasonReadyBacklog, "17 segments"},
		{"ready at the threshold", func(s *ArchiverState) { s.Ready = ready(16) }, nil, checks.Pass, "", ""},
		{"ready unknown", func(s *ArchiverState) { s.Ready, s.ReadyErr = nil, "permissions: denied" }, nil, checks.Warn, ReasonReadyUnknown, "grant pg_monitor"},
		{"replication lag", func(s *ArchiverState) {
			l := 120.0
			s.Standbys = []Standby{{Name: "replica1", ReplayLagSeconds: &l}}
		}, func(w *policy.WALAudit) { w.MaxReplicationLag.Duration = time.Minute }, checks.Fail, ReasonReplicationLag, "replica1"},
		{"no standby", nil, func(w *policy.WALAudit) { w.MaxReplicationLag.Duration = time.Minute }, checks.Warn, ReasonNoStandby, ""},
		{"standby with archive_mode on", func(s *ArchiverState) { s.InRecovery = true }, nil, checks.Pass, "", "the primary archives"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, sp := ok(), spec
			if tt.mod != nil {
				tt.mod(&st)
			}
			if tt.spec != nil {
				tt.spec(&sp)
			}
			f := EvaluateWAL(st, rpo, sp, now)
			wantFinding(t, f, tt.status, tt.reason, tt.msg)
			// archive_command may hold credentials: it never reaches the JSON report.
			b, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			if st.ArchiveCommand != "" && strings.Contains(string(b), st.ArchiveCommand) {
				t.Errorf("archive_command leaked into the finding: %s", b)
			}
		})
	}
}

// Issue 17 item 5: failures the archiver got past are a warning with the count, the rate and
// the last failure, whenever the audit runs; only a segment stuck past the grace fails.
func TestEvaluateWALIntermittent(t *testing.T) {
	now := t0
	at := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	n := func(v int64) *int64 { return &v }
	ready := func(v int) *int { return &v }
	reset := at(30 * 24 * time.Hour)
	spec := policy.WALAudit{MaxReady: 16, IdleWALBytes: 8192, FailureGrace: policy.Duration{Duration: 5 * time.Minute}}
	// Every other attempt fails: 40 segments archived, 40 failures since the reset.
	base := func() ArchiverState {
		return ArchiverState{ArchiveMode: "on", ArchiveCommand: "flaky", SegmentBytes: 16 << 20, StatsReset: reset,
			ArchivedCount: 40, LastArchivedWAL: "000000010000000000000028", LastArchivedTime: at(2 * time.Minute),
			FailedCount: 40, LastFailedWAL: "000000010000000000000028", LastFailedTime: at(2*time.Minute + time.Second),
			WALBytesSinceArchived: n(100), Ready: ready(0)}
	}
	prev := &WALSample{At: now.Add(-10 * time.Minute), ArchivedCount: 30, FailedCount: 30, StatsReset: reset}
	tests := []struct {
		name   string
		mod    func(*ArchiverState)
		prev   *WALSample
		status checks.Status
		reason string
		msg    string
	}{
		{"after a retry succeeded", nil, prev, checks.Warn, ReasonArchiveIntermittent,
			"10 archive failures since the previous audit at 2026-11-20T02:50:00Z, 50% of 20 attempts, the last for 000000010000000000000028"},
		{"between a failure and its retry", func(s *ArchiverState) {
			s.LastFailedWAL, s.LastFailedTime, s.FailedCount = "000000010000000000000029", at(time.Second), 41
			s.Ready, s.OldestReady = ready(1), at(2*time.Second)
		}, prev, checks.Warn, ReasonArchiveIntermittent, "is being retried"},
		{"stuck past the grace", func(s *ArchiverState) {
			s.LastFailedWAL, s.LastFailedTime, s.FailedCount = "000000010000000000000029", at(time.Second), 60
			s.Ready, s.OldestReady = ready(1), at(20*time.Minute)
		}, prev, checks.Fail, ReasonArchiveFailing, "30 failures, the last for 000000010000000000000029"},
		{"failing, and how long unknown (no pg_monitor)", func(s *ArchiverState) {
			s.LastFailedWAL, s.LastFailedTime, s.FailedCount = "000000010000000000000029", at(time.Second), 41
			s.Ready, s.ReadyErr = nil, "permissions: denied"
		}, prev, checks.Fail, ReasonArchiveFailing, "grant pg_monitor"},
		{"no failure since the previous audit", nil, &WALSample{At: now.Add(-time.Minute), ArchivedCount: 40, FailedCount: 40, StatsReset: reset},
			checks.Pass, "", "40 failures since 2026-10-21T03:00:00Z, the last at 2026-11-20T02:57:59Z, none since the previous audit"},
		{"no previous audit: a failure within the RPO", nil, nil, checks.Warn, ReasonArchiveIntermittent, "since the statistics reset at 2026-10-21T03:00:00Z, 50% of 80 attempts"},
		{"no previous audit: failures older than the RPO", func(s *ArchiverState) { s.LastFailedTime = at(2 * time.Hour) }, nil, checks.Pass, "", "none since the statistics reset"},
		{"statistics reset since the previous audit", func(s *ArchiverState) { s.StatsReset = at(time.Minute) }, prev, checks.Warn, ReasonArchiveIntermittent, "since the statistics reset at 2026-11-20T02:59:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := base()
			if tt.mod != nil {
				tt.mod(&st)
			}
			in := WALInput{RPO: time.Hour, Spec: spec, Now: now, Previous: tt.prev}
			f := EvaluateWALWith(st, in)
			wantFinding(t, f, tt.status, tt.reason, tt.msg)
			// Deterministic: the same inputs, the same finding.
			if g := EvaluateWALWith(st, in); g.Status != f.Status || g.Message != f.Message {
				t.Errorf("second evaluation differs: %s %q", g.Status, g.Message)
			}
		})
	}
}

func TestWalkArchive(t *testing.T) {
	const seg = 16 << 20
	files := func(names ...string) []ArchiveFile {
		var out []ArchiveFile
		for _, n := range names {
			out = append(out, ArchiveFile{Name: n, Size: seg})
		}
		return out
	}
	tests := []struct {
		name             string
		files            []ArchiveFile
		end              string
		base, from, to   string
		segments, missed int
		firstMissing     string
	}{
		{"continuous from the base backup", files("000000010000000000000001", "000000010000000000000002", "000000010000000000000002.00000028.backup",
			"000000010000000000000003", "000000010000000000000004"), "000000010000000000000004",
			"000000010000000000000002.00000028.backup", "000000010000000000000002", "000000010000000000000004", 3, 0, ""},
		{"a gap after the base backup", files("000000010000000000000002.00000028.backup", "000000010000000000000002",
			"000000010000000000000004", "000000010000000000000005"), "000000010000000000000005",
			"000000010000000000000002.00000028.backup", "000000010000000000000002", "000000010000000000000005", 3, 1, "000000010000000000000003"},
		{"a gap before the newest base backup does not matter", files("000000010000000000000001", "000000010000000000000003",
			"000000010000000000000003.00000060.backup", "000000010000000000000004"), "000000010000000000000004",
			"000000010000000000000003.00000060.backup", "000000010000000000000003", "000000010000000000000004", 2, 0, ""},
		{"no base backup label: from the oldest segment", files("000000010000000000000001", "000000010000000000000003"), "",
			"", "000000010000000000000001", "000000010000000000000003", 2, 1, "000000010000000000000002"},
		{"compressed segments count", files("000000010000000000000001.00000028.backup", "000000010000000000000001.gz", "000000010000000000000002.zst"), "000000010000000000000002",
			"000000010000000000000001.00000028.backup", "000000010000000000000001", "000000010000000000000002", 2, 0, ""},
		{"a timeline switch continues the numbers", files("000000010000000000000001.00000028.backup", "000000010000000000000001",
			"000000010000000000000002.partial", "00000002.history", "000000020000000000000002", "000000020000000000000003"), "000000020000000000000003",
			"000000010000000000000001.00000028.backup", "000000020000000000000001", "000000020000000000000003", 3, 0, ""},
		{"segments across a log boundary", files("0000000100000000000000FE.00000028.backup", "0000000100000000000000FE", "0000000100000000000000FF",
			"000000010000000100000000"), "000000010000000100000000",
			"0000000100000000000000FE.00000028.backup", "0000000100000000000000FE", "000000010000000100000000", 3, 0, ""},
		{"empty archive", nil, "000000010000000000000004", "", "000000010000000000000004", "000000010000000000000004", 0, 1, "000000010000000000000004"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := WalkArchive(tt.files, seg, tt.end)
			first := ""
			if len(w.FirstMissing) > 0 {
				first = w.FirstMissing[0]
			}
			if w.BaseBackup != tt.base || w.From != tt.from || w.To != tt.to || w.Segments != tt.segments || w.Missing != tt.missed || first != tt.firstMissing {
				t.Errorf("walk = %+v\nwant base %s from %s to %s, %d present, %d missing (first %s)", w, tt.base, tt.from, tt.to, tt.segments, tt.missed, tt.firstMissing)
			}
		})
	}
}

// memArchive is a WAL archive in memory.
type memArchive []ArchiveFile

func (m memArchive) Scan(_ context.Context, visit func(Backup) error) error {
	for _, f := range m {
		if err := visit(Backup{Key: f.Name, Size: f.Size}); err != nil {
			return err
		}
	}
	return nil
}

// Issue 17 item 4: what pg_stat_archiver says was archived must be in the archive.
func TestArchiveCheck(t *testing.T) {
	const seg = 16 << 20
	st := ArchiverState{ArchiveMode: "on", ArchiveCommand: "x", SegmentBytes: seg, ArchivedCount: 3,
		LastArchivedWAL: "000000010000000000000003", LastArchivedTime: &t0, Ready: new(int)}
	tests := []struct {
		name   string
		files  memArchive
		status checks.Status
		reason string
		msg    string
	}{
		{"archive_command = /bin/true: nothing there", nil, checks.Fail, ReasonArchiveMissing, "reports success without archiving"},
		{"all there", memArchive{{"000000010000000000000001.00000028.backup", 300}, {"000000010000000000000001", seg}, {"000000010000000000000002", seg}, {"000000010000000000000003", seg}},
			checks.Pass, "", "archive holds 000000010000000000000003 and the 3 segments since base backup 000000010000000000000001.00000028.backup without a gap"},
		{"compressed", memArchive{{"000000010000000000000003.gz", 1000}}, checks.Pass, "", ""},
		{"truncated", memArchive{{"000000010000000000000003", 4096}}, checks.Fail, ReasonArchiveWrongSize, "4096 bytes, not a segment's 16777216"},
		{"a gap", memArchive{{"000000010000000000000001.00000028.backup", 300}, {"000000010000000000000001", seg}, {"000000010000000000000003", seg}},
			checks.Fail, ReasonArchiveGap, "1 segment missing from the archive between 000000010000000000000001 and 000000010000000000000003"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := CheckArchive(t.Context(), tt.files, "mem", st)
			f := EvaluateWALWith(st, WALInput{RPO: time.Hour, Spec: policy.WALAudit{MaxReady: 16}, Now: t0.Add(time.Minute), Archive: a})
			wantFinding(t, f, tt.status, tt.reason, tt.msg)
		})
	}
}
