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
	// ReasonUnverifiedCopy: a copy whose bytes could not be shown to be the primary's with the
	// evidence copies.verify accepts (only a writer's claim, a multipart ETag, or the size). It
	// is not counted; a warning of its own, the count rules say what that costs.
	ReasonUnverifiedCopy = "unverified-copy"
)

// Kinds of comparison, in copyRow.Compared (the "compared" evidence field).
const (
	ComparedSize          = "size"           // sizes differ: no checksum needed to tell
	ComparedETagMD5       = "etag-md5"       // single-part ETags: the store's MD5 of the bytes
	ComparedETagMultipart = "etag-multipart" // ETags of multipart uploads: depend on the writer's part size
	ComparedRead          = "read-sha256"    // copies.verify: read hashed both
	ComparedSizeOnly      = "size-only"      // nothing else to compare
	ComparedTime          = "time"           // another kind of backup, judged by its time
	ComparedPrevious      = "previous backup"
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
	Source    string `json:"source"`
	Where     string `json:"where"`
	Media     string `json:"media"`
	Offsite   bool   `json:"offsite"`
	Status    string `json:"status"` // copy, pending, missing, stale, mismatch, unverified, error
	Counted   bool   `json:"counted"`
	Immutable bool   `json:"immutable"`
	Lock      string `json:"lock,omitempty"`
	// LockMode is the Object Lock retention mode in force on the copy (the object's own, else
	// the bucket's default): COMPLIANCE or GOVERNANCE; LegalHold is the object's legal hold.
	LockMode  string     `json:"lockMode,omitempty"`
	LegalHold bool       `json:"legalHold,omitempty"`
	Key       string     `json:"key,omitempty"`
	Size      *int64     `json:"size,omitempty"`
	Time      *time.Time `json:"time,omitempty"`
	Compared  string     `json:"compared,omitempty"`
	Detail    string     `json:"detail,omitempty"`
	Cause     string     `json:"cause,omitempty"`
	// unknown: the copy could not be read; mayLock: its location supports Object Lock.
	unknown, mayLock bool
	live             bool
}

// CheckCopies verifies the 3-2-1 rule for a target's newest backup: enough copies, on enough
// kinds of media, enough of them offsite and immutable; and every copy found matches the
// primary (size, then checksum or ETag) and is fresh (trails it by at most maxLag).
func CheckCopies(ctx context.Context, in CopiesInput) checks.Finding {
	spec := in.Spec
	maxLag := spec.MaxLag.Duration
	ev := checks.Evidence{"minCopies": spec.MinCopies, "minMedia": spec.MinMedia, "minOffsite": deref(spec.MinOffsite),
		"minImmutable": deref(spec.MinImmutable), "immutableFor": spec.ImmutableFor.String(), "maxLag": maxLag.String(), "now": in.Now,
		"verify": verifyMode(spec), "immutableMode": immutableMode(spec)}
	var p problems
	var primary *SourceState
	for _, s := range in.Sources {
		if s.Name == in.Primary {
			primary = s
		}
	}
	if primary == nil {
		p.unreadable(errNotAmongCopies, "primary source %s is not among the copy sources", in.Primary)
		return p.finding(policy.CheckCopies, ev, "")
	}
	if primary.Err != nil {
		p.unreadable(primary.Err, "%s", unreadable(primary))
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
			p.unreadable(err, "could not read %s at the primary %s: %s", newest.Key, primary.Name, errLine(err))
		case ok:
			newest = &b
		}
	}
	ev["backup"] = map[string]any{"source": primary.Name, "key": newest.Key, "time": newest.Time, "size": newest.Size, "checksums": newest.Checksums,
		"claimed": newest.Claimed, "etag": newest.ETag}
	v := newVerifier(ctx, spec, primary)

	locks := map[BucketLocker]*lockResult{}
	var rows []copyRow
	for _, s := range in.Sources {
		row := copyRow{Source: s.Name, Where: s.Where, Media: s.Media, Offsite: s.Offsite}
		var got *Backup
		switch {
		case s.Err != nil:
			row.Status, row.Detail, row.Cause = "error", errLine(s.Err), CauseField(s.Err)
			p.unreadable(s.Err, "%s", unreadable(s))
			row.unknown, row.mayLock = true, s.Locker != nil || s.Family == FamilyObjects
		case s == primary:
			row.Status, got = "copy", newest
			if verifyMode(spec) == policy.VerifyRead && primary.Reader != nil {
				// The primary is hashed like every copy, so the evidence shows both digests.
				if h, err := v.hash(ctx, primary, newest.Key); err != nil {
					row.Status, row.Detail, row.Cause, got = "error", errLine(err), CauseField(err), nil
					p.unreadable(err, "could not read %s at the primary %s: %s", newest.Key, primary.Name, errLine(err))
				} else {
					row.Compared, row.Detail = ComparedRead, "sha256 "+h
				}
			}
		case s.Stat != nil && primary.Stat != nil && s.Family == primary.Family:
			got = matchCopy(ctx, &p, &row, v, s, newest, prev, maxLag, in.Now)
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
				row.Status, got, row.Compared = "copy", g, ComparedTime
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
					row.unknown, row.Cause = true, CauseField(lr.err)
					p.unreadable(lr.err, "could not read the Object Lock configuration at %s: %s", s.Name, errLine(lr.err))
				} else {
					lk := immutable(lr.lock, got, spec.ImmutableFor.Duration, in.Now, immutableMode(spec))
					row.Immutable, row.Lock, row.LockMode, row.LegalHold = lk.ok, lk.desc, lk.mode, lk.legalHold
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
		// The 3-2-1 rule counts the primary data as one of the three copies: the production
		// database itself, on its own disk, onsite, never immutable.
		rows = append(rows, copyRow{Source: "live-database", Where: "the production database", Media: policy.MediaDisk, Status: "copy", Counted: true,
			Lock: "none: the live database", live: true})
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
		len(known.media), strings.Join(mediaLabels(rows, known.mediaList()), ", "), spec.MinMedia)
	rule(ReasonNoOffsite, known.offsite, maybe.offsite, deref(spec.MinOffsite), "%d offsite copies (another region or provider), need %d",
		known.offsite, deref(spec.MinOffsite))
	rule(ReasonNoImmutable, known.immutable, maybe.immutable, deref(spec.MinImmutable), "%d immutable copies (Object Lock retaining it %s or more), need %d%s",
		known.immutable, human(spec.ImmutableFor.Duration), deref(spec.MinImmutable),
		where(rows, func(r copyRow) bool { return r.Counted && r.Lock != "" && !strings.HasPrefix(r.Lock, "none") }, " (%s)"))
	copies, offsite, immut, mediaList := known.copies, known.offsite, known.immutable, known.mediaList()
	what := ""
	if in.LiveDatabase {
		what = fmt.Sprintf(" (live database + %d %s)", copies-1, plural(copies-1, "backup", "backups"))
	}
	ok := fmt.Sprintf("%d copies of %s%s on %s, %d offsite, %d immutable", copies, newest.Key, what, strings.Join(mediaLabels(rows, mediaList), " + "), offsite, immut)
	if v.bytes > 0 {
		ev["readBytes"] = v.bytes
	}
	return p.finding(policy.CheckCopies, ev, ok)
}

// errNotAmongCopies: copies.primary names a source missing from copies.in (validation
// prevents it; a configuration built otherwise may not).
var errNotAmongCopies = fmt.Errorf("%w: the primary is not among copies.in", policy.ErrInvalid)

// mediaLabels names the media for messages: a kind of media held only by the live database
// is called so ("disk (live database)"), not left to read as a backup on disk.
func mediaLabels(rows []copyRow, media []string) []string {
	out := make([]string, len(media))
	for i, m := range media {
		out[i] = m
		onlyLive := false
		for _, r := range rows {
			if r.Counted && r.Media == m {
				if !r.live {
					onlyLive = false
					break
				}
				onlyLive = true
			}
		}
		if onlyLive {
			out[i] = m + " (live database)"
		}
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func verifyMode(spec policy.CopiesAudit) string {
	if spec.Verify == "" {
		return policy.DefaultAuditVerify
	}
	return spec.Verify
}

func immutableMode(spec policy.CopiesAudit) string {
	if spec.ImmutableMode == "" {
		return policy.DefaultAuditImmutableMode
	}
	return spec.ImmutableMode
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
func matchCopy(ctx context.Context, p *problems, row *copyRow, v *verifier, s *SourceState, newest, prev *Backup, maxLag time.Duration, now time.Time) *Backup {
	c, ok, err := s.Stat.Stat(ctx, newest.Key)
	if err != nil {
		row.Status, row.Detail, row.Cause = "error", errLine(err), CauseField(err)
		p.unreadable(err, "could not read %s at %s (%s): %s", newest.Key, s.Name, s.Where, errLine(err))
		return nil
	}
	if ok {
		row.Key, row.Size, row.Time = c.Key, &c.Size, &c.Time
		vd, err := v.verify(ctx, *newest, s, c)
		row.Compared = vd.compared
		switch {
		case err != nil:
			row.Status, row.Detail, row.Cause = "error", errLine(err), CauseField(err)
			p.unreadable(err, "could not verify %s at %s (%s): %s", newest.Key, s.Name, s.Where, errLine(err))
			return nil
		case vd.differs:
			row.Status, row.Detail = "mismatch", vd.detail
			p.fail(ReasonCopyMismatch, "copy of %s at %s differs from the primary: %s", newest.Key, s.Name, vd.detail)
			return nil
		case c.Time.Before(newest.Time.Add(-maxLag)):
			row.Status = "stale"
			row.Detail = fmt.Sprintf("%s older than the primary", age(newest.Time.Sub(c.Time)))
			p.fail(ReasonStaleCopy, "stale copy of %s at %s: %s older than the primary's (max lag %s)", newest.Key, s.Name, age(newest.Time.Sub(c.Time)), human(maxLag))
			return nil
		case !vd.verified:
			row.Status, row.Detail = "unverified", vd.detail
			p.warn(ReasonUnverifiedCopy, "copy of %s at %s not counted: %s", newest.Key, s.Name, vd.detail)
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
			row.Status, row.Detail, row.Cause = "error", errLine(err), CauseField(err)
			p.unreadable(err, "could not read %s at %s (%s): %s", prev.Key, s.Name, s.Where, errLine(err))
			return nil
		}
		if pok {
			if vd, err := v.verify(ctx, *prev, s, pc); err == nil && vd.verified {
				if lag <= maxLag {
					row.Status = "pending"
					row.Detail = fmt.Sprintf("holds the previous backup %s; %s not copied yet (%s since the backup, max lag %s)", prev.Key, newest.Key, age(lag), human(maxLag))
					row.Compared = ComparedPrevious + ", " + vd.compared
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

// verdict is what comparing a copy with the original showed.
type verdict struct {
	// differs: proved different (sizes, or checksums of one algorithm).
	differs bool
	// verified: proved the same with evidence copies.verify accepts.
	verified bool
	// compared names the evidence (Compared*, store-<alg>, claimed-<alg>).
	compared string
	detail   string
}

// compare compares a copy with the original without reading them: size, then the strongest
// evidence both have. Checksums the store computed (or verified at upload) prove sameness;
// what the writer claims (user metadata, sidecars) and multipart ETags only say it, and count
// when accept allows claims. Differing claims are a mismatch whatever accept says: either the
// bytes or the claim is wrong, and both need a person.
func compare(a, b Backup, acceptClaims bool) verdict {
	if a.Size != b.Size {
		return verdict{differs: true, compared: ComparedSize, detail: fmt.Sprintf("size %d bytes, primary %d bytes", b.Size, a.Size)}
	}
	for _, alg := range []string{"sha256", "crc64nvme", "crc32c", "crc32", "sha1", "manifest-sha256"} {
		x, y := a.Checksums[alg], b.Checksums[alg]
		if x != "" && y != "" {
			how := "store-" + alg
			if alg == "manifest-sha256" {
				how = alg
			}
			if x != y {
				return verdict{differs: true, compared: how, detail: fmt.Sprintf("%s %s, primary %s (computed by the store)", alg, y, x)}
			}
			return verdict{verified: true, compared: how}
		}
	}
	if a.ETag != "" && b.ETag != "" && !strings.Contains(a.ETag, "-") && !strings.Contains(b.ETag, "-") {
		if a.ETag != b.ETag {
			return verdict{differs: true, compared: ComparedETagMD5, detail: fmt.Sprintf("ETag %s, primary %s", b.ETag, a.ETag)}
		}
		return verdict{verified: true, compared: ComparedETagMD5}
	}
	weak := func(how, what string) verdict {
		if acceptClaims {
			return verdict{verified: true, compared: how}
		}
		return verdict{compared: how, detail: fmt.Sprintf("only %s to compare (%s), not a checksum the store computed; "+
			"copies.verify: read hashes both, claimed accepts it", how, what)}
	}
	// Claims, each side's store checksum standing in for a claim it lacks.
	for _, alg := range []string{"sha256", "sha512", "sha1", "md5"} {
		x, y := claimOf(a, alg), claimOf(b, alg)
		if x != "" && y != "" {
			if x != y {
				return verdict{differs: true, compared: "claimed-" + alg, detail: fmt.Sprintf("claimed %s %s, primary claims %s", alg, y, x)}
			}
			return weak("claimed-"+alg, "a checksum the writer supplied")
		}
	}
	if a.ETag != "" && a.ETag == b.ETag {
		return weak(ComparedETagMultipart, "the ETag of a multipart upload, which depends on the part size")
	}
	return verdict{compared: ComparedSizeOnly, detail: "only the size to compare (no common checksum); copies.verify: read hashes both"}
}

func claimOf(b Backup, alg string) string {
	if v := b.Checksums[alg]; v != "" {
		return v
	}
	return b.Claimed[alg]
}

// immutability is whether a copy is under Object Lock long enough, and why.
type immutability struct {
	ok        bool
	desc      string
	mode      string
	legalHold bool
}

// immutable says whether a copy is under Object Lock for at least period: its own retention
// (or legal hold) when the object reports one, else the bucket's default retention. With mode
// compliance only COMPLIANCE retention counts: GOVERNANCE retention can be bypassed, and a
// legal hold lifted, by a user allowed to (s3:BypassGovernanceRetention, s3:PutObjectLegalHold).
func immutable(bl BucketLock, b *Backup, period time.Duration, now time.Time, mode string) immutability {
	if !bl.Enabled {
		return immutability{desc: "Object Lock not enabled on the bucket"}
	}
	strict := mode == policy.ImmutableCompliance
	bypass := func(m string) string {
		return fmt.Sprintf("; %s retention can be bypassed by a privileged user (copies.immutableMode: compliance)", m)
	}
	judge := func(m string, kept time.Duration, until *time.Time, what string) immutability {
		r := immutability{mode: m}
		length := human(kept)
		if until != nil {
			length = age(kept)
		}
		switch {
		case until != nil && !until.After(now):
			r.desc = fmt.Sprintf("%s retention expired %s", m, until.UTC().Format(time.RFC3339))
		case kept+lockSlack < period:
			r.desc = fmt.Sprintf("%s %s retention of %s, shorter than %s", what, m, length, human(period))
		case strict && m != ComplianceMode:
			r.desc = fmt.Sprintf("%s %s retention of %s%s", what, m, length, bypass(m))
		default:
			r.ok = true
			if until != nil {
				r.desc = fmt.Sprintf("%s retention until %s", m, until.UTC().Format(time.RFC3339))
			} else {
				r.desc = fmt.Sprintf("default %s retention of %s", m, human(kept))
			}
		}
		return r
	}
	if l := b.Lock; l != nil {
		hold := func(r immutability) immutability {
			r.legalHold = l.LegalHold
			if l.LegalHold && !r.ok {
				if !strict {
					r.ok, r.desc = true, "legal hold"
				} else {
					r.desc += "; legal hold, which a user allowed s3:PutObjectLegalHold can lift (copies.immutableMode: compliance)"
				}
			}
			return r
		}
		if !l.RetainUntil.IsZero() {
			until := l.RetainUntil
			return hold(judge(l.Mode, l.RetainUntil.Sub(b.Time), &until, "object"))
		}
		if l.LegalHold {
			return hold(immutability{desc: "no object retention"})
		}
	}
	if bl.DefaultRetention == 0 {
		return immutability{desc: "Object Lock enabled but no default or object retention"}
	}
	return judge(bl.DefaultMode, bl.DefaultRetention, nil, "default")
}

// ComplianceMode is the Object Lock mode no user can shorten or lift.
const ComplianceMode = "COMPLIANCE"

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
