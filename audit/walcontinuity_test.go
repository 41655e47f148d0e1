package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/source/walarchive"
)

func TestCheckWALContinuity(t *testing.T) {
	const seg = 1 << 20
	name := func(n uint64) string { return walarchive.SegmentName(1, n, seg) }
	backupFile := name(2) + ".00000028.backup"
	backup := "START WAL LOCATION: 0/200028 (file " + name(2) + ")\nSTOP WAL LOCATION: 0/200100 (file " + name(2) + ")\nSTART TIMELINE: 1\nSTOP TIME: 2026-11-30 10:00:05 UTC\n"
	end := time.Date(2026, 11, 30, 10, 0, 5, 0, time.UTC)
	tests := []struct {
		name    string
		files   []string
		label   *walarchive.BackupLabel
		want    checks.Status
		msg     string
		missing string
	}{
		{name: "from the archive's .backup file", files: []string{name(1), name(2), name(3), name(4), backupFile}, want: checks.Pass, msg: "PITR window from base backup " + backupFile + " (2026-11-30T10:00:05Z) to 0/500000"},
		{name: "from a given backup", files: []string{name(2), name(3)}, label: &walarchive.BackupLabel{Timeline: 1, StartLSN: 0x300028}, want: checks.Pass, msg: "1 segments on timeline 1"},
		{name: "gap", files: []string{name(2), name(3), name(5), backupFile}, want: checks.Fail, msg: "lacks segment " + name(4), missing: name(4)},
		{name: "backup's own WAL missing", files: []string{name(3), backupFile}, want: checks.Fail, msg: "no point in time can be recovered", missing: name(2)},
		{name: "no base backup", files: []string{name(2)}, want: checks.Fail, msg: "no base backup"},
		{name: "missing history", files: []string{name(2), walarchive.SegmentName(2, 3, seg), backupFile}, want: checks.Fail, msg: "00000002.history"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				b := make([]byte, seg)
				if strings.HasSuffix(f, ".backup") {
					b = []byte(backup)
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			be := time.Time{}
			if tt.label == nil {
				be = end
			}
			f := CheckWALContinuity(context.Background(), dir, tt.label, "", be)
			t.Log(f.Message)
			if f.Status != tt.want || !strings.Contains(f.Message, tt.msg) {
				t.Errorf("%s %q, want %s containing %q", f.Status, f.Message, tt.want, tt.msg)
			}
			if tt.missing != "" && f.Evidence["firstMissing"] != tt.missing {
				t.Errorf("firstMissing = %v, want %s", f.Evidence["firstMissing"], tt.missing)
			}
		})
	}
	if f := CheckWALContinuity(context.Background(), "/nonexistent/archive", nil, "", time.Time{}); f.Status != checks.Error {
		t.Errorf("an unreadable archive: %s %s, want error", f.Status, f.Message)
	}
}
