package postgres

import (
	"strings"
	"testing"
	"time"
)

func TestParseRecoveryTarget(t *testing.T) {
	tests := []struct {
		in       string
		kind     string
		settings string
		err      bool
	}{
		{"", TargetLatest, "recovery_target_action", false},
		{"latest", TargetLatest, "recovery_target_timeline", false},
		{"immediate", TargetImmediate, "recovery_target=immediate", false},
		{"2026-11-30T10:00:00.5Z", TargetTime, "recovery_target_time=2026-11-30 10:00:00.5+00", false},
		{"2026-11-30T12:00:00+02:00", TargetTime, "recovery_target_time=2026-11-30 10:00:00+00", false},
		{"16/b374d848", TargetLSN, "recovery_target_lsn=16/B374D848", false},
		{"yesterday", "", "", true},
		{"2026-11-30 10:00", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRecoveryTarget(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if tt.err {
				return
			}
			var s []string
			for _, kv := range got.Settings() {
				s = append(s, kv[0]+"="+strings.Trim(kv[1], "'"))
			}
			if got.Kind != tt.kind || !strings.Contains(strings.Join(s, " "), tt.settings) {
				t.Errorf("got %s %v, want %s with %s", got.Kind, s, tt.kind, tt.settings)
			}
		})
	}
	if s := (RecoveryTarget{Kind: TargetTime, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}).String(); s != "2026-01-02T03:04:05Z" {
		t.Errorf("String = %s", s)
	}
}

func TestRecoverySettings(t *testing.T) {
	r := &Recovery{StagingDir: "/scratch/drill/wal", Target: RecoveryTarget{Kind: TargetLatest}}
	s, err := r.settings()
	if err != nil {
		t.Fatal(err)
	}
	if s[0] != [2]string{"restore_command", `'cp -- "/scratch/drill/wal/%f" "%p"'`} {
		t.Errorf("restore_command = %v", s[0])
	}
	for _, bad := range []string{"relative/wal", "/tmp/it's", "/tmp/$(x)"} {
		if _, err := (&Recovery{StagingDir: bad}).settings(); err == nil {
			t.Errorf("staging directory %q accepted", bad)
		}
	}
}
