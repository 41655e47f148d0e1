package walarchive

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// DefaultSegmentBytes is wal_segment_size unless initdb was told otherwise.
const DefaultSegmentBytes = 16 << 20

// LSN is a WAL location.
type LSN uint64

// ParseLSN reads "16/B374D848".
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("%q is not a WAL location (such as 0/3000028)", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a WAL location (such as 0/3000028)", s)
	}
	return LSN(h<<32 | l), nil
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF) }

// Kinds of archive files.
const (
	KindSegment = "segment"
	KindPartial = "partial"
	KindBackup  = "backup"
	KindHistory = "history"
)

// Name is a parsed archive file name.
type Name struct {
	Kind     string
	Timeline uint32
	// Segment is the segment number (segment, partial, and a backup history file's start).
	Segment uint64
	// Offset is a backup history file's start offset in its segment.
	Offset uint64
	// Compression is the suffix of a compressed file (".gz"), empty for none.
	Compression string
}

// Compressions are the suffixes archive_command scripts commonly add; only .gz can be read.
var Compressions = []string{".gz", ".zst", ".lz4", ".bz2", ".xz"}

// ParseName parses an archive file name; ok is false for anything else.
func ParseName(name string, segBytes int64) (Name, bool) {
	var n Name
	for _, c := range Compressions {
		if strings.HasSuffix(name, c) {
			name, n.Compression = strings.TrimSuffix(name, c), c
			break
		}
	}
	hex := func(s string) (uint64, bool) {
		if len(s) != 8 {
			return 0, false
		}
		v, err := strconv.ParseUint(s, 16, 32)
		return v, err == nil
	}
	if t, ok := strings.CutSuffix(name, ".history"); ok {
		tli, ok := hex(t)
		n.Kind, n.Timeline = KindHistory, uint32(tli)
		return n, ok && tli > 0
	}
	if len(name) < 24 || segBytes <= 0 {
		return n, false
	}
	tli, ok1 := hex(name[0:8])
	hi, ok2 := hex(name[8:16])
	lo, ok3 := hex(name[16:24])
	if !ok1 || !ok2 || !ok3 || tli == 0 {
		return n, false
	}
	n.Timeline, n.Segment = uint32(tli), hi*perLog(segBytes)+lo
	switch rest := name[24:]; {
	case rest == "":
		n.Kind = KindSegment
	case rest == ".partial":
		n.Kind = KindPartial
	case len(rest) == len(".00000000.backup") && strings.HasSuffix(rest, ".backup"):
		off, ok := hex(rest[1:9])
		if !ok {
			return n, false
		}
		n.Kind, n.Offset = KindBackup, off
	default:
		return n, false
	}
	return n, true
}

func perLog(segBytes int64) uint64 { return uint64(0x100000000 / segBytes) }

// SegmentName is the file name of segment seg on timeline tli.
func SegmentName(tli uint32, seg uint64, segBytes int64) string {
	return fmt.Sprintf("%08X%08X%08X", tli, seg/perLog(segBytes), seg%perLog(segBytes))
}

// HistoryName is the history file of timeline tli.
func HistoryName(tli uint32) string { return fmt.Sprintf("%08X.history", tli) }

// SegmentOf is the segment holding lsn.
func SegmentOf(lsn LSN, segBytes int64) uint64 { return uint64(lsn) / uint64(segBytes) }

// HistoryEntry is one line of a timeline history file: Timeline ran until Switch, where its
// child began.
type HistoryEntry struct {
	Timeline uint32
	Switch   LSN
}

// ParseHistory reads a timeline history file ("parentTLI<TAB>switchpoint<TAB>reason" lines).
func ParseHistory(b []byte) ([]HistoryEntry, error) {
	var out []HistoryEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("malformed timeline history line %q", line)
		}
		tli, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("malformed timeline history line %q: %w", line, err)
		}
		sw, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("malformed timeline history line %q: %w", line, err)
		}
		if len(out) > 0 && (uint32(tli) <= out[len(out)-1].Timeline || sw < out[len(out)-1].Switch) {
			return nil, fmt.Errorf("timeline history out of order at %q", line)
		}
		out = append(out, HistoryEntry{Timeline: uint32(tli), Switch: sw})
	}
	return out, sc.Err()
}

// BackupLabel is what a backup_label (or an archived .backup history file) says.
type BackupLabel struct {
	StartLSN     LSN
	StartSegment string // the file named in START WAL LOCATION
	Checkpoint   LSN
	Timeline     uint32
	StartTime    string
	Label        string
	// StopLSN, StopTime and StopTimeline are only in .backup history files.
	StopLSN      LSN
	StopTime     string
	StopTimeline uint32
}

// ParseBackupLabel reads a backup_label or .backup history file.
func ParseBackupLabel(b []byte) (BackupLabel, error) {
	var l BackupLabel
	sc := bufio.NewScanner(bytes.NewReader(b))
	seen := false
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		var err error
		switch k {
		case "START WAL LOCATION":
			loc, rest, _ := strings.Cut(v, " ")
			l.StartLSN, err = ParseLSN(loc)
			if _, f, ok := strings.Cut(rest, "(file "); ok {
				l.StartSegment = strings.TrimSuffix(f, ")")
			}
			seen = err == nil
		case "STOP WAL LOCATION":
			loc, _, _ := strings.Cut(v, " ")
			l.StopLSN, err = ParseLSN(loc)
		case "CHECKPOINT LOCATION":
			l.Checkpoint, err = ParseLSN(v)
		case "START TIMELINE":
			var t uint64
			t, err = strconv.ParseUint(v, 10, 32)
			l.Timeline = uint32(t)
		case "STOP TIMELINE":
			var t uint64
			t, err = strconv.ParseUint(v, 10, 32)
			l.StopTimeline = uint32(t)
		case "START TIME":
			l.StartTime = v
		case "STOP TIME":
			l.StopTime = v
		case "LABEL":
			l.Label = v
		}
		if err != nil {
			return l, fmt.Errorf("while reading backup label line %q: %w", sc.Text(), err)
		}
	}
	if !seen {
		return l, fmt.Errorf("not a backup label: no START WAL LOCATION line")
	}
	if l.Timeline == 0 && len(l.StartSegment) >= 8 {
		t, _ := strconv.ParseUint(l.StartSegment[:8], 16, 32)
		l.Timeline = uint32(t)
	}
	return l, nil
}
