package audit

import (
	"context"
	"sort"
	"time"
)

// Backup is one backup as the auditor sees it: an object, a file or a snapshot.
type Backup struct {
	// Key identifies the backup within its source: an object key or file path relative to the
	// source's prefix, or a snapshot id. Copies of one backup share the key.
	Key  string    `json:"key"`
	Time time.Time `json:"time"`
	Size int64     `json:"size"`
	// SizeUnknown: the source did not report a size (a CSI driver without restoreSize); size
	// rules cannot judge the backup, and it is not taken for an empty one.
	SizeUnknown bool `json:"sizeUnknown,omitempty"`
	// ETag is the S3 entity tag without quotes (an MD5 of the content for single-part uploads).
	ETag string `json:"etag,omitempty"`
	// Checksums are whole-content checksums the store computed (or verified at upload), by
	// algorithm: "sha256" (hex), "crc32", "crc32c", "crc64nvme", "sha1" (as S3 reports them),
	// "manifest-sha256" (a snapshot's manifest, written by firedrill).
	Checksums map[string]string `json:"checksums,omitempty"`
	// Claimed are checksums the writer supplied, which anyone able to write can set to anything:
	// x-amz-meta-sha256, sidecar files (<key>.sha256, SHA256SUMS, ...). By algorithm, hex.
	Claimed map[string]string `json:"claimed,omitempty"`
	// Lock is the object's own Object Lock state, when the source reports one (S3 HEAD).
	Lock *ObjectLock `json:"lock,omitempty"`
}

// claim records a checksum the writer supplied.
func (b *Backup) claim(alg, hex string) {
	if b.Claimed == nil {
		b.Claimed = map[string]string{}
	}
	b.Claimed[alg] = hex
}

// ObjectLock is an object version's retention and legal hold.
type ObjectLock struct {
	Mode        string    `json:"mode,omitempty"`
	RetainUntil time.Time `json:"retainUntil,omitempty"`
	LegalHold   bool      `json:"legalHold,omitempty"`
}

// Source lists one target's backups at one place. Scan streams them (page by page for S3) and
// never holds them all: what the checks need is kept by a Summary.
type Source interface {
	Scan(ctx context.Context, visit func(Backup) error) error
}

// Stater finds one backup by key, with its checksums and lock state (S3 HEAD, a file's stat).
// Sources whose copies are byte-identical across locations implement it.
type Stater interface {
	Stat(ctx context.Context, key string) (Backup, bool, error)
}

// BucketLocker reads a bucket's Object Lock configuration.
type BucketLocker interface {
	BucketLock(ctx context.Context) (BucketLock, error)
}

// BucketLock is a bucket's Object Lock configuration as the bucket reports it.
type BucketLock struct {
	Enabled bool `json:"enabled"`
	// DefaultMode and DefaultRetention are the bucket's default retention rule, if any.
	DefaultMode      string        `json:"defaultMode,omitempty"`
	DefaultRetention time.Duration `json:"defaultRetentionSeconds,omitempty"`
}

// Summary is what the checks need from a source's listing, in bounded memory: the count, the
// newest few backups (for sizes and copies) and the newest good one (for age).
type Summary struct {
	Source string `json:"source"`
	Count  int    `json:"count"`
	// Newest are the newest backups, newest first, at most keep of them.
	Newest []Backup `json:"newest,omitempty"`
	// NewestGood is the newest backup at least minBytes large.
	NewestGood *Backup `json:"newestGood,omitempty"`
	// Future counts backups dated after the summary's limit (clock skew, a mis-set restore):
	// they are in none of the above, and FutureNewest is the one dated furthest ahead.
	Future       int     `json:"future,omitempty"`
	FutureNewest *Backup `json:"futureNewest,omitempty"`
	keep         int
	minBytes     int64
	notAfter     time.Time
}

// NewSummary keeps the newest keep backups and the newest one of at least minBytes.
func NewSummary(source string, keep int, minBytes int64) *Summary {
	return &Summary{Source: source, keep: max(keep, 1), minBytes: minBytes}
}

// NotAfter makes the summary set aside backups dated after t (the audit's clock plus the
// tolerance for clock skew): a backup from the future proves nothing about how recent the
// real ones are, and must never stand in for the newest.
func (s *Summary) NotAfter(t time.Time) *Summary {
	s.notAfter = t
	return s
}

// Add records one backup. Newest is kept sorted, so each Add costs at most O(keep).
func (s *Summary) Add(b Backup) {
	if !s.notAfter.IsZero() && b.Time.After(s.notAfter) {
		s.Future++
		if s.FutureNewest == nil || newer(b, *s.FutureNewest) {
			f := b
			s.FutureNewest = &f
		}
		return
	}
	s.Count++
	if (b.Size >= s.minBytes || b.SizeUnknown) && (s.NewestGood == nil || newer(b, *s.NewestGood)) {
		g := b
		s.NewestGood = &g
	}
	if len(s.Newest) == s.keep && !newer(b, s.Newest[len(s.Newest)-1]) {
		return
	}
	i := sort.Search(len(s.Newest), func(i int) bool { return newer(b, s.Newest[i]) })
	if len(s.Newest) < s.keep {
		s.Newest = append(s.Newest, Backup{})
	}
	copy(s.Newest[i+1:], s.Newest[i:])
	s.Newest[i] = b
}

// newer orders backups by time, then by key (a later key wins a tie, as dated names sort).
func newer(a, b Backup) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return a.Key > b.Key
}

// Summarize scans src into a new summary.
func Summarize(ctx context.Context, name string, src Source, keep int, minBytes int64) (*Summary, error) {
	return SummarizeInto(ctx, NewSummary(name, keep, minBytes), src)
}

// SummarizeInto scans src into s.
func SummarizeInto(ctx context.Context, s *Summary, src Source) (*Summary, error) {
	err := src.Scan(ctx, func(b Backup) error {
		s.Add(b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}
