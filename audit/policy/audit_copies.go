package policy

// targets[].audit.copies.*: the 3-2-1 check of a target's newest backup.

import (
	"fmt"
)

// CopiesAudit is targets[].audit.copies: it configures the 3-2-1 check of a target's newest backup.
type CopiesAudit struct {
	// Primary is the source whose newest backup is "the backup" (default: the first source).
	Primary string `yaml:"primary" json:"primary,omitempty"`
	// In lists the sources holding copies (default: every source).
	In []string `yaml:"in" json:"in,omitempty"`
	// LiveDatabase counts the production database itself as a copy on disk, onsite (default true).
	LiveDatabase *bool `yaml:"liveDatabase" json:"liveDatabase,omitempty"`
	MinCopies    int   `yaml:"minCopies" json:"minCopies"`
	MinMedia     int   `yaml:"minMedia" json:"minMedia"`
	// MinOffsite and MinImmutable may be set to 0 to drop the rule (default 1 each).
	MinOffsite   *int `yaml:"minOffsite" json:"minOffsite"`
	MinImmutable *int `yaml:"minImmutable" json:"minImmutable"`
	// ImmutableFor is the retention an Object Lock must guarantee to count as immutable.
	ImmutableFor Duration `yaml:"immutableFor" json:"immutableFor"`
	// MaxLag is how far a copy may trail the primary backup (default: objectives.rpo).
	MaxLag Duration `yaml:"maxLag" json:"maxLag"`
	// Verify is what makes a copy count as the same bytes: store, claimed or read.
	Verify string `yaml:"verify" json:"verify"`
	// ReadBytesPerSecond bounds the reads of verify: read, all locations together.
	ReadBytesPerSecond int64 `yaml:"readBytesPerSecond" json:"readBytesPerSecond"`
	// ImmutableMode is any (GOVERNANCE or COMPLIANCE retention, legal hold) or compliance.
	ImmutableMode string `yaml:"immutableMode" json:"immutableMode"`
}

// How the 3-2-1 check verifies that a copy holds the same bytes as the primary (copies.verify).
const (
	// VerifyStore counts a copy only when a checksum the store computed (x-amz-checksum-*, or a
	// single-part ETag) matches the primary's.
	VerifyStore = "store"
	// VerifyClaimed also accepts checksums the writer supplied (x-amz-meta-sha256, .sha256
	// sidecars) and multipart ETags.
	VerifyClaimed = "claimed"
	// VerifyRead downloads and hashes the newest backup at every location.
	VerifyRead = "read"
)

// Which Object Lock retention counts as immutable (copies.immutableMode).
const (
	// ImmutableAny counts GOVERNANCE and COMPLIANCE retention and legal holds.
	ImmutableAny = "any"
	// ImmutableCompliance counts only COMPLIANCE retention: GOVERNANCE retention and legal holds
	// can be lifted by a privileged user.
	ImmutableCompliance = "compliance"
)

// validateCopiesAudit checks audit.copies (p is its path); sources are the target's audit
// source names.
func validateCopiesAudit(p string, cp CopiesAudit, sources map[string]bool, add addFunc) {
	if cp.Primary != "" && !sources[cp.Primary] {
		add(p+".primary", "no source %q in audit.sources", cp.Primary)
	}
	for j, n := range cp.In {
		if !sources[n] {
			add(fmt.Sprintf("%s.in[%d]", p, j), "no source %q in audit.sources", n)
		}
	}
	if cp.MinCopies < 1 {
		add(p+".minCopies", "must be 1 or more, got %d", cp.MinCopies)
	}
	if cp.MinMedia < 1 {
		add(p+".minMedia", "must be 1 or more, got %d", cp.MinMedia)
	}
	if v := cp.MinOffsite; v != nil && *v < 0 {
		add(p+".minOffsite", "must be zero or more, got %d", *v)
	}
	if v := cp.MinImmutable; v != nil && *v < 0 {
		add(p+".minImmutable", "must be zero or more, got %d", *v)
	}
	oneOf(add, p+".verify", cp.Verify, []string{VerifyStore, VerifyClaimed, VerifyRead})
	oneOf(add, p+".immutableMode", cp.ImmutableMode, []string{ImmutableAny, ImmutableCompliance})
	if cp.ReadBytesPerSecond < 1<<20 {
		add(p+".readBytesPerSecond", "must be at least 1048576 (1 MiB/s), got %d", cp.ReadBytesPerSecond)
	}
}
