package audit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
)

// Reasons the 3-2-1 check names.
const (
	ReasonTooFewCopies = "too-few-copies"
	ReasonTooFewMedia  = "too-few-media"
	ReasonNoOffsite    = "no-offsite"
	ReasonNoImmutable  = "no-immutable"
	ReasonMissingCopy  = "missing-copy"
	ReasonStaleCopy    = "stale-copy"
	ReasonCopyMismatch = "copy-mismatch"
)

// lockSlack absorbs the second-granularity of LastModified against a retain-until date the
// server computed from the same upload.
const lockSlack = time.Minute

// CopiesInput is what the 3-2-1 check of one target works on.
type CopiesInput struct {
	// Primary is the source whose newest good backup is "the backup"; Sources hold the copies
	// (the primary among them).
	Primary string
	Sources []*SourceState
	// LiveDatabase counts the production database as a copy on disk, onsite.
	LiveDatabase bool
	Spec         policy.CopiesAudit
	MinBytes     int64
	Now          time.Time
}

// copyRow is the evidence about one location's copy.
type copyRow struct {
	Source    string     `json:"source"`
	Where     string     `json:"where"`
	Media     string     `json:"media"`
	Offsite   bool       `json:"offsite"`
	Status    string     `json:"status"` // copy, pending, missing, stale, mismatch, error
	Counted   bool       `json:"counted"`
	Immutable bool       `json:"immutable"`
	Lock      string     `json:"lock,omitempty"`
	Key       string     `json:"key,omitempty"`
	Size      *int64     `json:"size,omitempty"`
	Time      *time.Time `json:"time,omitempty"`
	Compared  string     `json:"compared,omitempty"`
	Detail    string     `json:"detail,omitempty"`
	// unknown: the copy could not be read; mayLock: its location supports Object Lock.
	unknown, mayLock bool
}

// CheckCopies verifies the 3-2-1 rule for a target's newest backup: enough copies, on enough
// kinds of media, enough of them offsite and immutable; and every copy found matches the
// primary (size, then checksum or ETag) and is fresh (trails it by at most maxLag).
func CheckCopies(ctx context.Context, in CopiesInput) checks.Finding {
	spec := in.Spec
	maxLag := spec.MaxLag.Duration
	ev := checks.Evidence{"minCopies": spec.MinCopies, "minMedia": spec.MinMedia, "minOffsite": deref(spec.MinOffsite),
		"minImmutable": deref(spec.MinImmutable), "immutableFor": spec.ImmutableFor.String(), "maxLag": maxLag.String(), "now": in.Now}
	var p problems
	var primary *SourceState
	for _, s := range in.Sources {
		if s.Name == in.Primary {
			primary = s
		}
	}
	if primary == nil {
		p.error(ReasonUnreadable, "primary source %s is not among the copy sources", in.Primary)
		return p.finding(policy.CheckCopies, ev, "")
	}
	if primary.Err != nil {
		p.error(ReasonUnreadable, "%s", unreadable(primary))
		return p.finding(policy.CheckCopies, ev, "")
	}
	newest, prev := goodPair(primary.Summary, in.MinBytes)
	if newest == nil {
		p.fail(ReasonNoBackup, "no good backup at the primary %s (%s)", primary.Name, primary.Where)
		return p.finding(policy.CheckCopies, ev, "")
	}
	// The listing has no checksums or lock state: read the primary's object itself.
	if primary.Stat != nil {
		b, ok, err := primary.Stat.Stat(ctx, newest.Key)
		switch {
		case err != nil:
			p.error(ReasonUnreadable, "could not read %s at the primary %s: %s", newest.Key, primary.Name, errLine(err))
		case ok:
			newest = &b
		}
	}
	ev["backup"] = map[string]any{"source": primary.Name, "key": newest.Key, "time": newest.Time, "size": newest.Size, "checksums": newest.Checksums, "etag": newest.ETag}

	locks := map[BucketLocker]*lockResult{}
	var rows []copyRow
	for _, s := range in.Sources {
		row := copyRow{Source: s.Name, Where: s.Where, Media: s.Media, Offsite: s.Offsite}
		var got *Backup
		switch {
		case s.Err != nil:
			row.Status, row.Detail = "error", errLine(s.Err)
			p.error(ReasonUnreadable, "%s", unreadable(s))
			row.unknown, row.mayLock = true, s.Locker != nil || s.Family == FamilyObjects
		case s == primary:
			row.Status, got = "copy", newest
		case s.Stat != nil && primary.Stat != nil && s.Family == primary.Family:
			got = matchCopy(ctx, &p, &row, s, newest, prev, maxLag, in.Now)
		default:
			// Another kind of backup of the same data (a snapshot beside dumps): judged by time.
			g := s.Summary.NewestGood
			switch {
			case g == nil:
				row.Status = "missing"
				p.warn(ReasonMissingCopy, "no backup at %s", s.Name)
			case g.Time.Before(newest.Time.Add(-maxLag)):
				row.Status, row.Key = "stale", g.Key
				row.Detail = fmt.Sprintf("newest there is %s behind the primary's", age(newest.Time.Sub(g.Time)))
				p.fail(ReasonStaleCopy, "stale copy at %s: its newest backup %s is %s older than %s (max lag %s)", s.Name, g.Key, age(newest.Time.Sub(g.Time)), newest.Key, human(maxLag))
			default:
				row.Status, got, row.Compared = "copy", g, "time"
			}
		}
		if got != nil {
			row.Counted = true
			row.Key, row.Size, row.Time = got.Key, &got.Size, &got.Time
			if s.Locker != nil {
				lr, ok := locks[s.Locker]
				if !ok {
					lr = &lockResult{}
					lr.lock, lr.err = s.Locker.BucketLock(ctx)
					locks[s.Locker] = lr
				}
				if lr.err != nil {
					row.Lock, row.mayLock = "unknown: "+errLine(lr.err), true
					row.unknown = true
					p.error(ReasonUnreadable, "could not read the Object Lock configuration at %s: %s", s.Name, errLine(lr.err))
				} else {
					row.Immutable, row.Lock = immutable(lr.lock, got, spec.ImmutableFor.Duration, in.Now)
				}
			} else {
				row.Lock = "none: " + s.Media + " location"
			}
		}
		if row.Status == "error" {
			row.unknown, row.mayLock = true, true
		}
		rows = append(rows, row)
	}

	if in.LiveDatabase {
		rows = append(rows, copyRow{Source: "live-database", Where: "the production database", Media: policy.MediaDisk, Status: "copy", Counted: true, Lock: "none: the live database"})
	}
	// Counted strictly, and as if every copy that could not be read were there: a rule that
	// fails only for want of unreadable copies could not be checked; it is not proved broken.
	known := tally(rows, false)
	maybe := tally(rows, true)
	ev["copies"], ev["media"], ev["offsite"], ev["immutable"], ev["locations"] = known.copies, known.mediaList(), known.offsite, known.immutable, rows
	rule := func(reason string, have, maybeHave, need int, format string, a ...any) {
		switch {
		case have >= need:
		case maybeHave >= need:
			p.error(ReasonUnreadable, "could not verify: "+format+" (some locations could not be read)", a...)
		default:
			p.fail(reason, format, a...)
		}
	}
	rule(ReasonTooFewCopies, known.copies, maybe.copies, spec.MinCopies, "%d copies of %s, need %d%s",
		known.copies, newest.Key, spec.MinCopies, where(rows, func(r copyRow) bool { return !r.Counted }, " (none usable at %s)"))
	rule(ReasonTooFewMedia, len(known.media), len(maybe.media), spec.MinMedia, "copies on %d kind of media (%s), need %d",
		len(known.media), strings.Join(known.mediaList(), ", "), spec.MinMedia)
	rule(ReasonNoOffsite, known.offsite, maybe.offsite, deref(spec.MinOffsite), "%d offsite copies (another region or provider), need %d",
		known.offsite, deref(spec.MinOffsite))
	rule(ReasonNoImmutable, known.immutable, maybe.immutable, deref(spec.MinImmutable), "%d immutable copies (Object Lock retaining it %s or more), need %d%s",
		known.immutable, human(spec.ImmutableFor.Duration), deref(spec.MinImmutable),
		where(rows, func(r copyRow) bool { return r.Counted && r.Lock != "" && !strings.HasPrefix(r.Lock, "none") }, " (%s)"))
	copies, offsite, immut, mediaList := known.copies, known.offsite, known.immutable, known.mediaList()
	ok := fmt.Sprintf("%d copies of %s on %s, %d offsite, %d immutable", copies, newest.Key, strings.Join(mediaList, " + "), offsite, immut)
	return p.finding(policy.CheckCopies, ev, ok)
}

type counts struct {
	copies, offsite, immutable int
	media                      map[string]bool
}

func (c counts) mediaList() []string {
	out := make([]string, 0, len(c.media))
	for m := range c.media {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// tally counts the copies; with unknown, rows that could not be read count as copies that
// might be there (immutable if their location could lock them).
func tally(rows []copyRow, unknown bool) counts {
	c := counts{media: map[string]bool{}}
	for _, r := range rows {
		maybe := unknown && r.unknown
		if !r.Counted && !maybe {
			continue
		}
		c.copies++
		c.media[r.Media] = true
		if r.Offsite {
			c.offsite++
		}
		if r.Immutable || (maybe && r.mayLock) {
			c.immutable++
		}
	}
	return c
}

type lockResult struct {
	lock BucketLock
	err  error
}

// matchCopy finds the copy of newest at s by key and judges it; it returns the copy that counts.
func matchCopy(ctx context.Context, p *problems, row *copyRow, s *SourceState, newest, prev *Backup, maxLag time.Duration, now time.Time) *Backup {
	c, ok, err := s.Stat.Stat(ctx, newest.Key)
	if err != nil {
		row.Status, row.Detail = "error", errLine(err)
		p.error(ReasonUnreadable, "could not read %s at %s (%s): %s", newest.Key, s.Name, s.Where, errLine(err))
		return nil
	}
	if ok {
		row.Key, row.Size, row.Time = c.Key, &c.Size, &c.Time
		same, how, detail := sameContent(*newest, c)
		row.Compared = how
		switch {
		case !same:
			row.Status, row.Detail = "mismatch", detail
			p.fail(ReasonCopyMismatch, "copy of %s at %s differs from the primary: %s", newest.Key, s.Name, detail)
			return nil
		case c.Time.Before(newest.Time.Add(-maxLag)):
			row.Status = "stale"
			row.Detail = fmt.Sprintf("%s older than the primary", age(newest.Time.Sub(c.Time)))
			p.fail(ReasonStaleCopy, "stale copy of %s at %s: %s older than the primary's (max lag %s)", newest.Key, s.Name, age(newest.Time.Sub(c.Time)), human(maxLag))
			return nil
		}
		row.Status = "copy"
		return &c
	}
	// Not copied (yet). Within maxLag of the backup a location holding the previous one is
	// merely behind: copy jobs run after the backup, and an audit every few minutes must not
	// alarm in between.
	lag := now.Sub(newest.Time)
	if prev != nil {
		pc, pok, err := s.Stat.Stat(ctx, prev.Key)
		if err != nil {
			row.Status, row.Detail = "error", errLine(err)
			p.error(ReasonUnreadable, "could not read %s at %s (%s): %s", prev.Key, s.Name, s.Where, errLine(err))
			return nil
		}
		if pok {
			if same, _, _ := sameContent(*prev, pc); same {
				if lag <= maxLag {
					row.Status = "pending"
					row.Detail = fmt.Sprintf("holds the previous backup %s; %s not copied yet (%s since the backup, max lag %s)", prev.Key, newest.Key, age(lag), human(maxLag))
					row.Compared = "previous backup"
					return &pc
				}
				row.Status, row.Key = "stale", pc.Key
				row.Detail = fmt.Sprintf("holds only the previous backup %s; %s missing for %s", prev.Key, newest.Key, age(lag))
				p.fail(ReasonStaleCopy, "stale copy at %s: it holds %s but not %s, %s after the backup (max lag %s)", s.Name, prev.Key, newest.Key, age(lag), human(maxLag))
				return nil
			}
		}
	}
	row.Status = "missing"
	row.Detail = "no copy of " + newest.Key
	p.warn(ReasonMissingCopy, "no copy of %s at %s", newest.Key, s.Name)
	return nil
}

// sameContent compares a copy with the original: size, then the strongest checksum both have,
// then single-part ETags. It says what it compared.
func sameContent(a, b Backup) (same bool, how, detail string) {
	if a.Size != b.Size {
		return false, "size", fmt.Sprintf("size %d bytes, primary %d bytes", b.Size, a.Size)
	}
	for _, alg := range []string{"sha256", "crc64nvme", "crc32c", "crc32", "sha1", "manifest-sha256"} {
		x, y := a.Checksums[alg], b.Checksums[alg]
		if x != "" && y != "" {
			if x != y {
				return false, "size+" + alg, fmt.Sprintf("%s %s, primary %s", alg, y, x)
			}
			return true, "size+" + alg, ""
		}
	}
	if a.ETag != "" && b.ETag != "" && !strings.Contains(a.ETag, "-") && !strings.Contains(b.ETag, "-") {
		if a.ETag != b.ETag {
			return false, "size+etag", fmt.Sprintf("ETag %s, primary %s", b.ETag, a.ETag)
		}
		return true, "size+etag", ""
	}
	return true, "size only (no common checksum)", ""
}

// immutable says whether a copy is under Object Lock for at least period: its own retention
// (or legal hold) when the object reports one, else the bucket's default retention.
func immutable(bl BucketLock, b *Backup, period time.Duration, now time.Time) (bool, string) {
	if !bl.Enabled {
		return false, "Object Lock not enabled on the bucket"
	}
	if l := b.Lock; l != nil {
		if l.LegalHold {
			return true, "legal hold"
		}
		if !l.RetainUntil.IsZero() {
			kept := l.RetainUntil.Sub(b.Time)
			switch {
			case !l.RetainUntil.After(now):
				return false, fmt.Sprintf("%s retention expired %s", l.Mode, l.RetainUntil.UTC().Format(time.RFC3339))
			case kept+lockSlack < period:
				return false, fmt.Sprintf("%s retention of %s, shorter than %s", l.Mode, age(kept), human(period))
			}
			return true, fmt.Sprintf("%s retention until %s", l.Mode, l.RetainUntil.UTC().Format(time.RFC3339))
		}
	}
	switch {
	case bl.DefaultRetention == 0:
		return false, "Object Lock enabled but no default or object retention"
	case bl.DefaultRetention < period:
		return false, fmt.Sprintf("default %s retention of %s, shorter than %s", bl.DefaultMode, human(bl.DefaultRetention), human(period))
	}
	return true, fmt.Sprintf("default %s retention of %s", bl.DefaultMode, human(bl.DefaultRetention))
}

// goodPair returns the newest good backup of a summary and the good one before it.
func goodPair(s *Summary, minBytes int64) (newest, prev *Backup) {
	if s == nil || s.NewestGood == nil {
		return nil, nil
	}
	n := *s.NewestGood
	for i := range s.Newest {
		b := s.Newest[i]
		if b.Size >= minBytes && newer(n, b) {
			return &n, &b
		}
	}
	return &n, nil
}

func where(rows []copyRow, pick func(copyRow) bool, format string) string {
	var names []string
	for _, r := range rows {
		if pick(r) {
			names = append(names, r.Source+": "+firstNonEmpty(r.Detail, r.Lock, r.Status))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(format, strings.Join(names, "; "))
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
