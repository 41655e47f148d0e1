package postgres

import (
	"slices"
	"strings"
	"testing"
)

const (
	mb16 = 16 << 20
	gb1  = 1 << 30
)

func TestWALSegmentsBetween(t *testing.T) {
	tests := []struct {
		name        string
		first, last string
		segSize     int64
		want        []string
		wantErr     string
	}{
		{
			name: "same segment", first: "000000010000000000000004", last: "000000010000000000000004", segSize: mb16,
			want: []string{"000000010000000000000004"},
		},
		{
			name: "consecutive segments", first: "000000010000000000000004", last: "000000010000000000000006", segSize: mb16,
			want: []string{"000000010000000000000004", "000000010000000000000005", "000000010000000000000006"},
		},
		{
			name: "across the low part's FF to 100 boundary, 16 MB", first: "0000000100000000000000FE", last: "000000010000000100000001", segSize: mb16,
			want: []string{"0000000100000000000000FE", "0000000100000000000000FF", "000000010000000100000000", "000000010000000100000001"},
		},
		{
			name: "exactly FF to the next high part, 16 MB", first: "0000000100000000000000FF", last: "000000010000000100000000", segSize: mb16,
			want: []string{"0000000100000000000000FF", "000000010000000100000000"},
		},
		{
			name: "1 GB segments have four per high part", first: "000000010000000000000002", last: "000000010000000100000001", segSize: gb1,
			want: []string{"000000010000000000000002", "000000010000000000000003", "000000010000000100000000", "000000010000000100000001"},
		},
		{
			name: "64 MB segments", first: "00000001000000000000003F", last: "000000010000000100000000", segSize: 64 << 20,
			want: []string{"00000001000000000000003F", "000000010000000100000000"},
		},
		{
			name: "timeline kept", first: "0000000A00000003000000FF", last: "0000000A0000000400000000", segSize: mb16,
			want: []string{"0000000A00000003000000FF", "0000000A0000000400000000"},
		},
		{name: "stop before start", first: "000000010000000000000005", last: "000000010000000000000004", segSize: mb16, wantErr: "precedes start segment"},
		{name: "stop before start across high parts", first: "000000010000000100000000", last: "0000000100000000000000FF", segSize: mb16, wantErr: "precedes"},
		{name: "short first name", first: "00000001000000000000004", last: "000000010000000000000004", segSize: mb16, wantErr: "invalid WAL file name"},
		{name: "long last name", first: "000000010000000000000004", last: "0000000100000000000000040", segSize: mb16, wantErr: "invalid WAL file name"},
		{name: "not hex", first: "00000001000000000000000G", last: "000000010000000000000004", segSize: mb16, wantErr: "invalid WAL file name"},
		{name: "history file", first: "00000002.history", last: "000000020000000000000004", segSize: mb16, wantErr: "invalid WAL file name"},
		{name: "empty", first: "", last: "", segSize: mb16, wantErr: "invalid WAL file name"},
		{name: "zero segment size", first: "000000010000000000000004", last: "000000010000000000000004", segSize: 0, wantErr: "invalid wal_segment_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := walSegmentsBetween(tt.first, tt.last, tt.segSize)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("walSegmentsBetween = %v, want an error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("walSegmentsBetween: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("walSegmentsBetween = %v, want %v", got, tt.want)
			}
		})
	}
}

// pg15Label is a backup_label as PostgreSQL 15's pg_backup_stop returns it.
const pg15Label = "START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nCHECKPOINT LOCATION: 0/4000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-21 16:20:03 UTC\nLABEL: firedrill orders\nSTART TIMELINE: 1\n"

func TestParseLabel(t *testing.T) {
	tests := []struct {
		name    string
		label   string
		tli     int
		seg     string
		wantErr bool
	}{
		{name: "PostgreSQL 15", label: pg15Label, tli: 1, seg: "000000010000000000000004"},
		{
			name:  "later timeline",
			label: strings.NewReplacer("000000010000000000000004", "00000003000000020000001A", "START TIMELINE: 1", "START TIMELINE: 3").Replace(pg15Label),
			tli:   3, seg: "00000003000000020000001A",
		},
		{
			name:  "no START TIMELINE line: timeline from the file name",
			label: "START WAL LOCATION: 0/4000028 (file 0000000B0000000000000004)\nCHECKPOINT LOCATION: 0/4000060\n",
			tli:   11, seg: "0000000B0000000000000004",
		},
		{name: "no START WAL LOCATION", label: "CHECKPOINT LOCATION: 0/4000060\nSTART TIMELINE: 1\n", wantErr: true},
		{name: "lowercase file name", label: "START WAL LOCATION: 0/4000028 (file 00000001000000000000000a)\n", wantErr: true},
		{name: "empty", label: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tli, seg, err := parseLabel(tt.label)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseLabel = %d, %q, want an error", tli, seg)
				}
				if !strings.Contains(err.Error(), "START WAL LOCATION") {
					t.Errorf("error %q does not say what is missing", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseLabel: %v", err)
			}
			if tli != tt.tli || seg != tt.seg {
				t.Errorf("parseLabel = %d, %q; want %d, %q", tli, seg, tt.tli, tt.seg)
			}
		})
	}
}
