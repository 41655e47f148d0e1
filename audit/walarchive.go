package audit

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// The WAL archive as archive_command leaves it: one file per segment, history file and backup
// label, named as PostgreSQL names them, optionally compressed. The walk below is shared by
// every check that needs to know which segments the archive holds (wal-archiving's look at
// the last segment, and a wal-continuity check).

// ArchiveFile is one file of a WAL archive.
type ArchiveFile struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// WALName is a parsed archive file name.
type WALName struct {
	Kind     string // "segment", "partial", "backup" (a base backup's label), "history"
	Timeline uint32
	// Segment is the segment number (segment and partial files; a backup label's start).
	Segment uint64
	// Offset is a backup label's start offset within its segment.
	Offset     uint64
	Compressed bool
}

// ParseWALName parses an archive file name; ok is false for anything else.
func ParseWALName(name string, segBytes int64) (WALName, bool) {
	var w WALName
	base := path.Base(name)
	for _, c := range CompressionSuffixes {
		if strings.HasSuffix(base, c) {
			base, w.Compressed = strings.TrimSuffix(base, c), true
			break
		}
	}
	hex := func(s string, bits int) (uint64, bool) {
		if len(s) != 8 {
			return 0, false
		}
		v, err := strconv.ParseUint(s, 16, bits)
		return v, err == nil
	}
	if t, rest, ok := strings.Cut(base, "."); ok && len(t) == 8 && rest == "history" {
		tli, ok := hex(t, 32)
		w.Kind, w.Timeline = "history", uint32(tli)
		return w, ok
	}
	if len(base) < 24 || segBytes <= 0 {
		return w, false
	}
	tli, ok1 := hex(base[0:8], 32)
	hi, ok2 := hex(base[8:16], 32)
	lo, ok3 := hex(base[16:24], 32)
	if !ok1 || !ok2 || !ok3 {
		return w, false
	}
	w.Timeline = uint32(tli)
	w.Segment = hi*uint64(0x100000000/segBytes) + lo
	switch rest := base[24:]; {
	case rest == "":
		w.Kind = "segment"
	case rest == ".partial":
		w.Kind = "partial"
	case strings.HasSuffix(rest, ".backup") && len(rest) == len(".00000000.backup"):
		off, ok := hex(rest[1:9], 64)
		if !ok {
			return w, false
		}
		w.Kind, w.Offset = "backup", off
	default:
		return w, false
	}
	return w, true
}

// segmentName is the file name of segment seg on timeline tli.
func segmentName(tli uint32, seg uint64, segBytes int64) string {
	perLog := uint64(0x100000000 / segBytes)
	return fmt.Sprintf("%08X%08X%08X", tli, seg/perLog, seg%perLog)
}

// ArchiveWalk is the archive's segments from the newest base backup's start to the end: the
// window a point-in-time recovery can replay through, and the holes in it.
type ArchiveWalk struct {
	// BaseBackup is the newest base backup's label file the walk starts from; "" when the
	// archive holds none, and the walk starts at its oldest segment.
	BaseBackup string `json:"baseBackup,omitempty"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	// Segments are the segment numbers present in [From, To]; Missing those absent, with the
	// first few named.
	Segments     int      `json:"segments"`
	Missing      int      `json:"missing"`
	FirstMissing []string `json:"firstMissing,omitempty"`
}

// maxNamedMissing bounds the missing segments named in evidence.
const maxNamedMissing = 5

// WalkArchive walks the archive's segments from the newest base backup label to end (a
// segment name, the last archived; "" for the newest segment in the archive). A segment number
// counts as present on any timeline up to end's: a timeline switch archives the old timeline's
// last segment as .partial and continues the number on the new one.
func WalkArchive(files []ArchiveFile, segBytes int64, end string) ArchiveWalk {
	var w ArchiveWalk
	present := map[uint64]bool{}
	var endTLI uint32
	var endSeg uint64
	haveEnd := false
	if e, ok := ParseWALName(end, segBytes); ok && e.Kind == "segment" {
		endTLI, endSeg, haveEnd = e.Timeline, e.Segment, true
	}
	type label struct {
		name     string
		seg, off uint64
	}
	var labels []label
	var segs []WALName
	for _, f := range files {
		n, ok := ParseWALName(f.Name, segBytes)
		if !ok {
			continue
		}
		switch n.Kind {
		case "segment":
			segs = append(segs, n)
		case "backup":
			labels = append(labels, label{f.Name, n.Segment, n.Offset})
		}
	}
	if !haveEnd {
		for _, n := range segs {
			if !haveEnd || n.Segment > endSeg || (n.Segment == endSeg && n.Timeline > endTLI) {
				endTLI, endSeg, haveEnd = n.Timeline, n.Segment, true
			}
		}
	}
	if !haveEnd {
		return w
	}
	from, haveFrom := uint64(0), false
	for _, n := range segs {
		if n.Timeline <= endTLI {
			present[n.Segment] = true
			if !haveFrom || n.Segment < from {
				from, haveFrom = n.Segment, true
			}
		}
	}
	sort.Slice(labels, func(i, j int) bool {
		if labels[i].seg != labels[j].seg {
			return labels[i].seg > labels[j].seg
		}
		return labels[i].off > labels[j].off
	})
	for _, l := range labels {
		if l.seg <= endSeg {
			w.BaseBackup, from, haveFrom = l.name, l.seg, true
			break
		}
	}
	if !haveFrom {
		from = endSeg
	}
	w.From, w.To = segmentName(endTLI, from, segBytes), segmentName(endTLI, endSeg, segBytes)
	for seg := from; seg <= endSeg; seg++ {
		if present[seg] {
			w.Segments++
			continue
		}
		w.Missing++
		if len(w.FirstMissing) < maxNamedMissing {
			w.FirstMissing = append(w.FirstMissing, segmentName(endTLI, seg, segBytes))
		}
	}
	return w
}

// ArchiveCheck is what the WAL archive holds of what pg_stat_archiver says was archived.
type ArchiveCheck struct {
	// Where is a printable description of the archive (a directory, a bucket and prefix).
	Where string `json:"where"`
	// Err is set when the archive could not be listed.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
	Cause string `json:"cause,omitempty"`
	Files int    `json:"files"`
	// Last is the file found for the last archived WAL file ("" when missing), its size and
	// the size a segment has.
	LastArchived string      `json:"lastArchived,omitempty"`
	Last         string      `json:"last,omitempty"`
	LastSize     int64       `json:"lastSize,omitempty"`
	SegmentBytes int64       `json:"segmentBytes"`
	Walk         ArchiveWalk `json:"walk"`
}

// CheckArchive lists the archive and compares it with the archiver's state. Listing errors are
// kept in the result: the finding reports that the archive could not be checked.
func CheckArchive(ctx context.Context, src Source, where string, st ArchiverState) *ArchiveCheck {
	a := &ArchiveCheck{Where: where, LastArchived: st.LastArchivedWAL, SegmentBytes: st.SegmentBytes}
	var files []ArchiveFile
	err := src.Scan(ctx, func(b Backup) error {
		if !strings.Contains(b.Key, "/") {
			files = append(files, ArchiveFile{Name: b.Key, Size: b.Size})
		}
		return nil
	})
	if err != nil {
		a.Err, a.Error, a.Cause = err, errLine(err), CauseField(err)
		return a
	}
	a.Files = len(files)
	if last := st.LastArchivedWAL; last != "" {
		for _, f := range files {
			if f.Name == last {
				a.Last, a.LastSize = f.Name, f.Size
				break // the uncompressed file wins
			}
			if a.Last == "" && compressedOf(f.Name, last) {
				a.Last, a.LastSize = f.Name, f.Size
			}
		}
	}
	end := ""
	if n, ok := ParseWALName(st.LastArchivedWAL, st.SegmentBytes); ok && n.Kind == "segment" {
		end = st.LastArchivedWAL
	}
	a.Walk = WalkArchive(files, st.SegmentBytes, end)
	return a
}

func compressedOf(name, of string) bool {
	for _, c := range CompressionSuffixes {
		if name == of+c {
			return true
		}
	}
	return false
}

// judge adds what the archive check proves to p.
func (a *ArchiveCheck) judge(p *problems, st ArchiverState) {
	if a.Err != nil {
		p.unreadable(a.Err, "could not list the WAL archive (%s): %s", a.Where, errLine(a.Err))
		return
	}
	if last := st.LastArchivedWAL; last != "" {
		n, _ := ParseWALName(last, st.SegmentBytes)
		switch {
		case a.Last == "":
			p.fail(ReasonArchiveMissing, "pg_stat_archiver says %s was archived, but it is not in the archive (%s): archive_command reports success without archiving (or audit.wal.archive is not where it writes)",
				last, a.Where)
		case a.Last == last && n.Kind == "segment" && a.LastSize != st.SegmentBytes:
			p.fail(ReasonArchiveWrongSize, "the archived %s is %d bytes, not a segment's %d (%s)", last, a.LastSize, st.SegmentBytes, a.Where)
		case a.LastSize == 0:
			p.fail(ReasonArchiveWrongSize, "the archived %s is empty (%s)", a.Last, a.Where)
		}
	}
	// An archive without a single segment in the range is the missing segment above, not a gap.
	if w := a.Walk; w.Missing > 0 && w.Segments > 0 {
		from := "its oldest segment (no base backup label in the archive)"
		if w.BaseBackup != "" {
			from = "the newest base backup " + w.BaseBackup
		}
		p.fail(ReasonArchiveGap, "%d %s missing from the archive between %s and %s, from %s (first missing %s): a recovery cannot replay past the gap",
			w.Missing, plural(w.Missing, "segment", "segments"), w.From, w.To, from, strings.Join(w.FirstMissing, ", "))
	}
}

// summary is the archive's state for the pass message.
func (a *ArchiveCheck) summary() string {
	if a.Walk.To == "" {
		return "archive " + a.Where + " holds no segments yet"
	}
	from := "its oldest segment"
	if a.Walk.BaseBackup != "" {
		from = "base backup " + a.Walk.BaseBackup
	}
	return fmt.Sprintf("archive holds %s and the %d segments since %s without a gap", firstNonEmpty(a.Last, a.Walk.To), a.Walk.Segments, from)
}
