package audit

import (
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
