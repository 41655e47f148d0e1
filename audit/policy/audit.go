package policy

// targets[].audit.*: the auditor's checks of a target (skip, sources, site, size, futureTolerance);
// audit.wal is in audit_wal.go, audit.copies in audit_copies.go.

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Audit check names, usable in audit.skip.
const (
	CheckWALArchiving = "wal-archiving"
	CheckBackupAge    = "backup-age"
	// CheckBackupIntegrity fails while a snapshot repository holds a damaged snapshot (metadata
	// missing or unreadable) or a foreign one (another target's).
	CheckBackupIntegrity = "backup-integrity"
	CheckBackupSize      = "backup-size"
	CheckCopies          = "copies-3-2-1"
	CheckDrillRecency    = "drill-recency"
	// CheckWALContinuity walks a basebackup target's WAL archive from its newest base backup
	// to the newest segment (restore_sources.go).
	CheckWALContinuity = "wal-continuity"
)

// AuditChecks lists every audit check, in the order reports show them.
var AuditChecks = []string{CheckWALArchiving, CheckWALContinuity, CheckBackupAge, CheckBackupIntegrity, CheckBackupSize, CheckCopies, CheckDrillRecency}

// AuditSpec is targets[].audit: it configures the auditor's checks of one target.
type AuditSpec struct {
	// Skip names checks not to run for this target (see AuditChecks).
	Skip []string `yaml:"skip" json:"skip,omitempty"`
	// Sources are where this target's backups are. Default: the target's own snapshots (local
	// repository or CSI VolumeSnapshots) as a source named "snapshots".
	Sources []AuditSource `yaml:"sources" json:"sources"`
	// Site is targets[].audit.site: where the database runs, for the offsite rule. Default: the region and provider
	// of the primary source's location.
	Site   Site        `yaml:"site" json:"site"`
	WAL    WALAudit    `yaml:"wal" json:"wal"`
	Size   SizeAudit   `yaml:"size" json:"size"`
	Copies CopiesAudit `yaml:"copies" json:"copies"`
	// Interval is targets[].audit.interval: how often serve audits this target; default
	// serve.auditInterval.
	Interval Duration `yaml:"interval" json:"interval"`
	// FutureTolerance is how far ahead of the audit's clock a backup may be dated (clock skew)
	// before it is reported as future-dated and left out of the age, size and copy checks.
	FutureTolerance Duration `yaml:"futureTolerance" json:"futureTolerance"`
}

// Skips reports whether the target's audit skips check name.
func (a *AuditSpec) Skips(name string) bool {
	for _, s := range a.Skip {
		if s == name {
			return true
		}
	}
	return false
}

// AuditSource is targets[].audit.sources[]: one place a target's backups are listed from.
type AuditSource struct {
	// Name defaults to the location's name.
	Name string `yaml:"name" json:"name"`
	// Location is a locations[].name. Empty means the target's own snapshots, from its snapshot
	// driver (the local repository or CSI VolumeSnapshots).
	Location string `yaml:"location" json:"location,omitempty"`
	// Prefix is joined to the location's prefix (S3) or path (directory).
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// Match is a glob on an object's base name, e.g. "*.dump"; empty means the common dump
	// and archive suffixes (DumpSuffixes). Checksum sidecars never match.
	Match string `yaml:"match" json:"match,omitempty"`
}

// hasOwnSnapshots says whether a target's snapshot driver keeps snapshots the auditor can list.
func hasOwnSnapshots(t *Target) bool {
	return t.Snapshot.Driver == "csi" || t.Snapshot.Local.Repository != ""
}

// Site is where a target's database runs.
type Site struct {
	Region   string `yaml:"region" json:"region,omitempty"`
	Provider string `yaml:"provider" json:"provider,omitempty"`
}

// SizeAudit is targets[].audit.size: it configures the backup-size check.
type SizeAudit struct {
	// MinBytes is the floor below which a backup is empty or truncated (default 1: zero-byte).
	MinBytes int64 `yaml:"minBytes" json:"minBytes"`
	// MaxDrop fails a newest backup this fraction or more smaller than the median of the
	// previous History backups (0.5: half the size or less).
	MaxDrop float64 `yaml:"maxDrop" json:"maxDrop"`
	// MaxGrowth warns when the newest backup is this fraction or more larger (1.0: double).
	MaxGrowth float64 `yaml:"maxGrowth" json:"maxGrowth"`
	// History is how many previous backups the median is taken over.
	History int `yaml:"history" json:"history"`
}

// validateAuditSpec checks a target's audit keys (p is targets[i].audit); locs are the
// locations by name.
func validateAuditSpec(c *Config, p string, t *Target, locs map[string]int, add addFunc) {
	a := &t.Audit
	for j, s := range a.Skip {
		if !slices.Contains(AuditChecks, s) {
			add(fmt.Sprintf("%s.skip[%d]", p, j), "unknown check %q (checks: %s)", s, strings.Join(AuditChecks, ", "))
		}
	}
	names := map[string]bool{}
	for j := range a.Sources {
		s := &a.Sources[j]
		sp := fmt.Sprintf("%s.sources[%d]", p, j)
		if s.Location != "" {
			// restore.source.location says it once when the source is the dumps' own.
			if _, ok := locs[s.Location]; !ok && s.Location != t.Restore.Source.Location {
				add(sp+".location", "no location %q under locations:", s.Location)
			}
		} else if !hasOwnSnapshots(t) && !t.DumpAuditSource(*s) && !t.Restore.Source.ListsBackups() {
			add(sp+".location", "required: this target has no snapshot repository to default to")
		}
		if !nameRe.MatchString(s.Name) {
			add(sp+".name", "%q is not a valid name: lowercase letters, digits and '-', at most 63", s.Name)
		} else if names[s.Name] {
			add(sp+".name", "duplicate source name %q", s.Name)
		}
		names[s.Name] = true
		if s.Match != "" {
			if _, err := path.Match(s.Match, "x"); err != nil {
				add(sp+".match", "not a valid glob: %s", err.Error())
			}
		}
	}
	validateWALAudit(c, p+".wal", a.WAL, locs, add)
	sz := a.Size
	if sz.MinBytes < 1 {
		add(p+".size.minBytes", "must be 1 or more (a zero-byte backup is never good), got %d", sz.MinBytes)
	}
	if sz.MaxDrop <= 0 || sz.MaxDrop > 1 {
		add(p+".size.maxDrop", "must be a fraction in (0, 1], e.g. 0.5 for half, got %v", sz.MaxDrop)
	}
	if sz.MaxGrowth <= 0 {
		add(p+".size.maxGrowth", "must be a positive fraction, e.g. 1.0 for double, got %v", sz.MaxGrowth)
	}
	if sz.History < 1 || sz.History > 100 {
		add(p+".size.history", "must be between 1 and 100, got %d", sz.History)
	}
	validateCopiesAudit(p+".copies", a.Copies, names, add)
	if a.FutureTolerance.Duration < 0 {
		add(p+".futureTolerance", "must be zero or more")
	}
}
