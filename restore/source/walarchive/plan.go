package walarchive

import (
	"fmt"
	"slices"
	"time"
)

// From is where a recovery starts: a base backup.
type From struct {
	// Timeline and StartLSN are the backup's START TIMELINE and START WAL LOCATION.
	Timeline uint32
	StartLSN LSN
	// StopLSN is the backup's end (backup_manifest, .backup file); 0 when unknown: then only
	// the start segment is known to be needed.
	StopLSN LSN
}

// Plan is what a recovery from a base backup can replay from the archive, following the
// newest timeline as recovery_target_timeline = latest does.
type Plan struct {
	// TargetTimeline is the timeline recovery ends on.
	TargetTimeline uint32
	// Files are the archive files to stage, in replay order: history files first, then the
	// backup history file if archived, then segments.
	Files []File
	// First and Last name the first and last segment replayable without a gap.
	First, Last string
	Segments    int
	// End is where the last segment ends: nothing past it can be replayed.
	End LSN
	// LastArchived is the newest modification time of a planned segment.
	LastArchived time.Time
	// Backup is the archived .backup file of the start, if any.
	Backup string
}

// GapError is a segment recovery needs that the archive lacks.
type GapError struct {
	// Missing is the first missing segment; After the last one present before it ("" when
	// the start segment itself is missing); Next the first present after it, if any.
	Missing, After, Next string
	// BeforeConsistent: the gap lies before the backup's end, so the backup itself cannot
	// become consistent.
	BeforeConsistent bool
}

func (e *GapError) Error() string {
	switch {
	case e.BeforeConsistent && e.After == "":
		return fmt.Sprintf("the WAL archive lacks %s, the base backup's start segment: the backup cannot be recovered", e.Missing)
	case e.BeforeConsistent:
		return fmt.Sprintf("the WAL archive lacks segment %s (after %s), which the base backup needs to become consistent", e.Missing, e.After)
	}
	return fmt.Sprintf("the WAL archive lacks segment %s (after %s, before %s): recovery cannot replay past %s", e.Missing, e.After, e.Next, e.After)
}

// TimelineError is a timeline history recovery cannot follow.
type TimelineError struct {
	Timeline uint32
	Reason   string
}

func (e *TimelineError) Error() string {
	return fmt.Sprintf("broken timeline history at timeline %d: %s", e.Timeline, e.Reason)
}

// timelineSpan is one timeline of the chain recovery follows: it holds WAL from Begin on.
type timelineSpan struct {
	tli   uint32
	begin LSN
	end   LSN // 0: open-ended (the target timeline)
}

// Plan walks the archive from a base backup. It returns what can be replayed up to the first
// problem, and a *GapError or *TimelineError naming the problem (or an error reading a
// history file). Without an error the plan reaches the archive's newest segment.
func (l *Listing) Plan(from From) (*Plan, error) {
	seg := l.SegmentBytes
	p := &Plan{TargetTimeline: from.Timeline}
	// recovery_target_timeline = latest: PostgreSQL probes history files upward one by one.
	for t := from.Timeline + 1; ; t++ {
		if _, ok := l.Find(HistoryName(t)); !ok {
			break
		}
		p.TargetTimeline = t
	}
	chain := []timelineSpan{{tli: from.Timeline}}
	var histories []File
	if p.TargetTimeline != from.Timeline {
		f, _ := l.Find(HistoryName(p.TargetTimeline))
		b, err := l.ReadSmall(f)
		if err != nil {
			return p, err
		}
		h, err := ParseHistory(b)
		if err != nil {
			return p, &TimelineError{Timeline: p.TargetTimeline, Reason: fmt.Sprintf("%s cannot be read: %v", f.Name, err)}
		}
		chain = chain[:0]
		var begin LSN
		for _, e := range h {
			chain = append(chain, timelineSpan{tli: e.Timeline, begin: begin, end: e.Switch})
			begin = e.Switch
		}
		chain = append(chain, timelineSpan{tli: p.TargetTimeline, begin: begin})
		i := slices.IndexFunc(chain, func(s timelineSpan) bool { return s.tli == from.Timeline })
		switch {
		case i < 0:
			return p, &TimelineError{Timeline: p.TargetTimeline, Reason: fmt.Sprintf("%s does not descend from the backup's timeline %d", f.Name, from.Timeline)}
		case chain[i].end != 0 && chain[i].end < from.StartLSN:
			return p, &TimelineError{Timeline: p.TargetTimeline, Reason: fmt.Sprintf("%s forked from timeline %d at %s, before the backup started at %s", f.Name, from.Timeline, chain[i].end, from.StartLSN)}
		}
		chain = chain[i:]
		for _, s := range chain[1:] {
			if hf, ok := l.Find(HistoryName(s.tli)); ok {
				histories = append(histories, hf)
			}
		}
	}
	// Each segment is read from the newest timeline of the chain that began at or before it,
	// as PostgreSQL's XLogFileReadAnyTLI does.
	tliFor := func(s uint64) uint32 {
		for i := len(chain) - 1; i >= 0; i-- {
			if SegmentOf(chain[i].begin, seg) <= s {
				return chain[i].tli
			}
		}
		return chain[0].tli
	}
	// Segments of a timeline past the one recovery would end on: its history file is missing.
	// Segments of an abandoned branch (an older timeline past its switch) are not replayed.
	maxSeg := SegmentOf(from.StartLSN, seg)
	for _, name := range l.Names() {
		n, ok := ParseName(name, seg)
		if !ok || n.Kind != KindSegment {
			continue
		}
		if n.Timeline > p.TargetTimeline {
			return p, &TimelineError{Timeline: n.Timeline, Reason: fmt.Sprintf("segments of timeline %d are archived (%s), but its history file %s is not: recovery would stop on timeline %d",
				n.Timeline, name, HistoryName(n.Timeline), p.TargetTimeline)}
		}
		if tliFor(n.Segment) == n.Timeline && n.Segment > maxSeg {
			maxSeg = n.Segment
		}
	}
	p.Files = histories
	if bf, ok := l.Find(fmt.Sprintf("%s.%08X.backup", SegmentName(from.Timeline, SegmentOf(from.StartLSN, seg), seg), uint64(from.StartLSN)%uint64(seg))); ok {
		p.Files, p.Backup = append(p.Files, bf), bf.Name
	}
	stopSeg := SegmentOf(from.StartLSN, seg)
	if from.StopLSN > from.StartLSN {
		stopSeg = SegmentOf(from.StopLSN-1, seg)
	}
	for s := SegmentOf(from.StartLSN, seg); ; s++ {
		name := SegmentName(tliFor(s), s, seg)
		f, ok := l.Find(name)
		if ok {
			p.Files = append(p.Files, f)
			if p.First == "" {
				p.First = name
			}
			p.Last, p.End = name, LSN((s+1)*uint64(seg))
			p.Segments++
			if f.ModTime.After(p.LastArchived) {
				p.LastArchived = f.ModTime
			}
			continue
		}
		if s <= stopSeg {
			gap := &GapError{Missing: name, After: p.Last, BeforeConsistent: true}
			gap.Next = l.nextPresent(s, maxSeg, tliFor)
			return p, gap
		}
		if s <= maxSeg {
			return p, &GapError{Missing: name, After: p.Last, Next: l.nextPresent(s, maxSeg, tliFor)}
		}
		return p, nil
	}
}

func (l *Listing) nextPresent(from, to uint64, tliFor func(uint64) uint32) string {
	for s := from + 1; s <= to; s++ {
		name := SegmentName(tliFor(s), s, l.SegmentBytes)
		if _, ok := l.Find(name); ok {
			return name
		}
	}
	return ""
}
