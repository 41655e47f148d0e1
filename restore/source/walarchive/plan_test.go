package walarchive

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const seg = 1 << 20 // small segments keep the test archive small

func archive(t *testing.T, files map[string]string) *Listing {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		b := []byte(content)
		if content == "" {
			b = make([]byte, seg)
		}
		if strings.HasSuffix(name, ".gz") {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(b)
			zw.Close()
			b = buf.Bytes()
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := List(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestParseNames(t *testing.T) {
	tests := []struct {
		name string
		want Name
		ok   bool
	}{
		{"000000010000000000000003", Name{Kind: KindSegment, Timeline: 1, Segment: 3}, true},
		{"000000020000000100000002", Name{Kind: KindSegment, Timeline: 2, Segment: 4096 + 2}, true},
		{"000000010000000000000003.gz", Name{Kind: KindSegment, Timeline: 1, Segment: 3, Compression: ".gz"}, true},
		{"000000010000000000000003.partial", Name{Kind: KindPartial, Timeline: 1, Segment: 3}, true},
		{"000000010000000000000003.00000028.backup", Name{Kind: KindBackup, Timeline: 1, Segment: 3, Offset: 0x28}, true},
		{"00000002.history", Name{Kind: KindHistory, Timeline: 2}, true},
		{"00000000.history", Name{}, false},
		{"README", Name{}, false},
		{"00000001000000000000000G", Name{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseName(tt.name, seg)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("ParseName = %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if got := SegmentName(2, 4096+2, seg); got != "000000020000000100000002" {
		t.Errorf("SegmentName = %s", got)
	}
	if l, err := ParseLSN("1/B374D848"); err != nil || l.String() != "1/B374D848" {
		t.Errorf("ParseLSN = %v %v", l, err)
	}
}

func TestPlan(t *testing.T) {
	s := func(tli uint32, n uint64) string { return SegmentName(tli, n, seg) }
	lsn := func(n uint64, off uint64) LSN { return LSN(n*seg + off) }
	backup := "START WAL LOCATION: 0/200028 (file 000000010000000000000002)\nSTOP WAL LOCATION: 0/300100 (file 000000010000000000000003)\nSTART TIMELINE: 1\n"
	from := From{Timeline: 1, StartLSN: lsn(2, 0x28), StopLSN: lsn(3, 0x100)}
	tests := []struct {
		name      string
		files     map[string]string
		from      From
		wantLast  string
		wantFiles int
		gap       string // the missing segment
		before    bool   // the gap is before consistency
		timeline  uint32 // a broken timeline history
		target    uint32
	}{
		{name: "straight", files: map[string]string{s(1, 1): "", s(1, 2): "", s(1, 3): "", s(1, 4): "", s(1, 2) + ".00000028.backup": backup},
			from: from, wantLast: s(1, 4), wantFiles: 4, target: 1},
		{name: "gzip", files: map[string]string{s(1, 1): "", s(1, 2) + ".gz": "", s(1, 3) + ".gz": ""},
			from: from, wantLast: s(1, 3), wantFiles: 2, target: 1},
		{name: "gap after consistency", files: map[string]string{s(1, 2): "", s(1, 3): "", s(1, 4): "", s(1, 6): ""},
			from: from, wantLast: s(1, 4), gap: s(1, 5), target: 1},
		{name: "start missing", files: map[string]string{s(1, 3): "", s(1, 4): ""},
			from: from, gap: s(1, 2), before: true, target: 1},
		{name: "end of backup missing", files: map[string]string{s(1, 2): ""},
			from: from, wantLast: s(1, 2), gap: s(1, 3), before: true, target: 1},
		{name: "timeline switch", files: map[string]string{s(1, 2): "", s(1, 3): "", s(1, 4): "", s(1, 5): "", s(1, 4) + ".partial": "",
			s(2, 4): "", s(2, 5): "", "00000002.history": "1\t0/480000\tno recovery target specified\n"},
			from: from, wantLast: s(2, 5), wantFiles: 1 + 4, target: 2},
		{name: "missing history of newer timeline", files: map[string]string{s(1, 2): "", s(1, 3): "", s(3, 4): ""},
			from: from, timeline: 3},
		{name: "history forks before the backup", files: map[string]string{s(1, 2): "", s(1, 3): "", s(2, 3): "", "00000002.history": "1\t0/100000\tx\n"},
			from: from, timeline: 2},
		{name: "garbled history", files: map[string]string{s(1, 2): "", "00000002.history": "one two\n"},
			from: from, timeline: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := archive(t, tt.files).Plan(tt.from)
			var gap *GapError
			var tl *TimelineError
			switch {
			case tt.gap != "":
				if !errors.As(err, &gap) || gap.Missing != tt.gap || gap.BeforeConsistent != tt.before {
					t.Fatalf("err = %v, want a gap at %s (before consistency: %v)", err, tt.gap, tt.before)
				}
				t.Log(err)
			case tt.timeline != 0:
				if !errors.As(err, &tl) || tl.Timeline != tt.timeline {
					t.Fatalf("err = %v, want a broken history at timeline %d", err, tt.timeline)
				}
				t.Log(err)
				return
			case err != nil:
				t.Fatal(err)
			}
			if p.Last != tt.wantLast || p.TargetTimeline != tt.target {
				t.Errorf("plan ends at %s on timeline %d, want %s on %d", p.Last, p.TargetTimeline, tt.wantLast, tt.target)
			}
			if tt.wantFiles != 0 && len(p.Files) != tt.wantFiles {
				t.Errorf("plan stages %d files, want %d: %+v", len(p.Files), tt.wantFiles, p.Files)
			}
		})
	}
}

func TestParseBackupLabel(t *testing.T) {
	b := []byte("START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-30 10:00:00 UTC\nLABEL: pg_basebackup base backup\nSTART TIMELINE: 1\n")
	l, err := ParseBackupLabel(b)
	if err != nil || l.StartLSN != 0x2000028 || l.Timeline != 1 || l.StartSegment != "000000010000000000000002" || l.StartTime != "2026-11-30 10:00:00 UTC" {
		t.Errorf("ParseBackupLabel = %+v, %v", l, err)
	}
	if _, err := ParseBackupLabel([]byte("hello")); err == nil {
		t.Error("a file without START WAL LOCATION parsed")
	}
}
