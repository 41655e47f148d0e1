package policy

// targets[].restore.source keys of the physical backup sources: base backups with a WAL
// archive (kind basebackup) and pgBackRest repositories (kind pgbackrest).

import (
	"os"
	"regexp"
	"strings"

	"github.com/firedrill/firedrill/restore/engine/postgres"
)

// Physical backup sources (restore.source.kind).
const (
	SourceBaseBackup = "basebackup"
	SourcePgBackRest = "pgbackrest"
)

// DefaultRecoveryTarget is restore.source.recovery.target of a physical source: the end of
// the WAL archive, whose last transaction measures the achieved RPO.
const DefaultRecoveryTarget = postgres.TargetLatest

// PhysicalSource holds restore.source's keys of kinds basebackup and pgbackrest (inlined in
// RestoreSource).
type PhysicalSource struct {
	// Archive is the WAL archive directory archive_command fills (kind basebackup).
	Archive string `yaml:"archive" json:"archive,omitempty"`
	// ArchiveLocation is a locations[].name of kind s3 or directory holding the WAL archive,
	// instead of Archive (kind basebackup).
	ArchiveLocation string `yaml:"archiveLocation" json:"archiveLocation,omitempty"`
	// ArchivePrefix is joined to the archive location's s3.prefix (s3) or path (directory).
	ArchivePrefix string `yaml:"archivePrefix" json:"archivePrefix,omitempty"`
	// resolvedArchive is the archive location named, set when the configuration is validated.
	resolvedArchive *Location
	// Recovery says where archive recovery stops.
	Recovery SourceRecovery `yaml:"recovery" json:"recovery,omitzero"`
	// Stanza is the pgBackRest stanza (kind pgbackrest).
	Stanza string `yaml:"stanza" json:"stanza,omitempty"`
	// Config is a pgbackrest.conf to read the stanza's repository settings from (kind
	// pgbackrest); empty: pgBackRest's default.
	Config string `yaml:"config" json:"config,omitempty"`
	// RepoPath is the posix repository's path (repo1-path), overriding the config's.
	RepoPath string `yaml:"repoPath" json:"repoPath,omitempty"`
}

// SourceRecovery is restore.source.recovery.
type SourceRecovery struct {
	// Target is latest, immediate, an RFC 3339 timestamp or an LSN.
	Target string `yaml:"target" json:"target,omitempty"`
}

// DefaultPhysicalAuditSourceName names the default audit source of a basebackup, pgbackrest,
// rdb or mariadb-backup target: the backups its drills restore, for backup-age and backup-size.
const DefaultPhysicalAuditSourceName = "backups"

// Physical reports whether the source restores a physical backup and replays WAL to a
// recovery target (basebackup, pgbackrest).
func (s RestoreSource) Physical() bool {
	return s.Kind == SourceBaseBackup || s.Kind == SourcePgBackRest
}

// Foreign reports whether the target's drills restore backups another tool made (dump files,
// base backups, pgBackRest, engine-native backup directories): such a target needs no
// snapshot section of its own.
func (s RestoreSource) Foreign() bool { return s.Kind == SourceDump || s.Physical() || s.Files() }

// RecoveryTarget is the validated recovery.target.
func (s RestoreSource) RecoveryTarget() postgres.RecoveryTarget {
	t, _ := postgres.ParseRecoveryTarget(s.Recovery.Target) // validated at load
	return t
}

var stanzaRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// validatePhysicalSource checks the keys of kinds basebackup and pgbackrest (p is
// restore.source's path).
func validatePhysicalSource(p string, s RestoreSource, runtime string, add addFunc) {
	if !s.Physical() {
		return
	}
	if _, err := postgres.ParseRecoveryTarget(s.Recovery.Target); err != nil {
		add(p+".recovery.target", "%v", err)
	}
	if runtime != "" && runtime != "local" {
		add(p+".kind", "kind %s is recovered by a local throwaway that reads WAL firedrill staged in scratch: use restore.runtime: local (got %q)", s.Kind, runtime)
	}
	isDir := func(key, dir, what string) {
		switch fi, err := os.Stat(dir); {
		case dir == "":
			add(key, "required with kind %s: %s", s.Kind, what)
		case err != nil || !fi.IsDir():
			add(key, "%s is not a directory", dir)
		}
	}
	switch s.Kind {
	case SourceBaseBackup:
		if s.Location == "" { // else validateDumpLocation resolves it
			isDir(p+".dir", s.Dir, "the directory holding the base backups (one per subdirectory, or one), or location (+prefix)")
		}
		if s.ArchiveLocation == "" { // else validateArchiveLocation resolves it
			isDir(p+".archive", s.Archive, "the WAL archive directory archive_command writes to, or archiveLocation (+archivePrefix)")
		}
		if s.Stanza != "" || s.Config != "" || s.RepoPath != "" {
			add(p, "stanza, config and repoPath are keys of kind pgbackrest")
		}
	case SourcePgBackRest:
		if !stanzaRe.MatchString(s.Stanza) {
			add(p+".stanza", "required with kind pgbackrest: the stanza's name (letters, digits, '_', '.', '-'), got %q", s.Stanza)
		}
		if s.Config != "" {
			if fi, err := os.Stat(s.Config); err != nil || fi.IsDir() {
				add(p+".config", "%s is not a file", s.Config)
			}
		}
		if s.RepoPath != "" {
			isDir(p+".repoPath", s.RepoPath, "")
		}
		if s.Archive != "" || s.Dir != "" || s.ArchiveLocation != "" {
			add(p, "dir, archive and archiveLocation are keys of kind basebackup (pgBackRest keeps both in its repository)")
		}
	}
}

// BaseBackupS3 returns the S3 location of a basebackup target's base backups and the full
// key prefix (ending in "/" unless empty), or nil when they are in a directory (Dir).
func (s RestoreSource) BaseBackupS3() (*Location, string) {
	if s.Kind != SourceBaseBackup || s.resolved == nil || s.resolved.Kind != LocationS3 {
		return nil, ""
	}
	l := *s.resolved
	return &l, dirPrefix(l.S3.Prefix + s.Prefix)
}

// ArchiveS3 returns the S3 location of a basebackup target's WAL archive and the full key
// prefix (ending in "/" unless empty), or nil when it is a directory (Archive).
func (s RestoreSource) ArchiveS3() (*Location, string) {
	if s.Kind != SourceBaseBackup || s.resolvedArchive == nil || s.resolvedArchive.Kind != LocationS3 {
		return nil, ""
	}
	l := *s.resolvedArchive
	return &l, dirPrefix(l.S3.Prefix + s.ArchivePrefix)
}

// dirPrefix makes a key prefix name a "directory": backups and segments are found by the
// path elements after it.
func dirPrefix(p string) string {
	if p != "" && !strings.HasSuffix(p, "/") {
		return p + "/"
	}
	return p
}

// validateArchiveLocation checks restore.source.archiveLocation and resolves it: an s3
// location is kept for ArchiveS3, a directory location becomes Archive (p is
// restore.source's path).
func validateArchiveLocation(c *Config, p string, s *RestoreSource, locs map[string]int, add addFunc) {
	if s.ArchiveLocation == "" {
		if s.ArchivePrefix != "" {
			add(p+".archivePrefix", "only used with archiveLocation")
		}
		return
	}
	if s.Kind != SourceBaseBackup {
		add(p+".archiveLocation", "only used with kind basebackup")
		return
	}
	if s.Archive != "" {
		add(p+".archiveLocation", "set archive or archiveLocation, not both")
		return
	}
	if l, dir := resolveSourceLocation(c, locs, p+".archiveLocation", s.ArchiveLocation, "archivePrefix", s.ArchivePrefix, "a WAL archive is", add); l != nil {
		s.resolvedArchive = l
		if dir != "" {
			s.Archive = dir
		}
	}
}
