package policy

// targets[].restore.source keys of kind dump that name a location: dumps in an S3 bucket
// (or a directory location), with the auditor's location settings.

import (
	"os"
	"path"
	"path/filepath"
)

// DumpLocation holds restore.source's location keys (inlined in RestoreSource).
type DumpLocation struct {
	// Location is a locations[].name of kind s3 or directory holding the dump files.
	Location string `yaml:"location" json:"location,omitempty"`
	// Prefix is joined to the location's s3.prefix (s3) or path (directory).
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// resolved is the location named, set when the configuration is validated.
	resolved *Location
}

// DumpS3 returns the S3 location the dumps are in and the full key prefix, or nil when the
// dumps are in a directory (Dir, which a directory location resolves to).
func (s RestoreSource) DumpS3() (*Location, string) {
	if s.Kind != SourceDump || s.resolved == nil || s.resolved.Kind != LocationS3 {
		return nil, ""
	}
	l := *s.resolved
	return &l, l.S3.Prefix + s.Prefix
}

// validateDumpLocation checks restore.source.location and resolves it: an s3 location is
// kept for DumpS3, a directory location becomes Dir (p is restore.source's path).
func validateDumpLocation(c *Config, p string, s *RestoreSource, locs map[string]int, add addFunc) {
	if s.Location == "" {
		if s.Prefix != "" {
			add(p+".prefix", "only used with location")
		}
		return
	}
	if s.Kind != SourceDump && s.Kind != SourceBaseBackup && !s.Files() {
		add(p+".location", "only used with kinds dump, basebackup, rdb, mariadb-backup, mariadb-dump and mongodump")
		return
	}
	if s.Dir != "" {
		add(p+".location", "set dir or location, not both")
		return
	}
	what := "dumps are"
	switch {
	case s.Kind == SourceBaseBackup:
		what = "base backups are"
	case s.Files():
		what = s.Kind + " backups are"
	}
	if l, dir := resolveSourceLocation(c, locs, p+".location", s.Location, "prefix", s.Prefix, what, add); l != nil {
		s.resolved = l
		if dir != "" {
			s.Dir = dir
		}
	}
}

// resolveSourceLocation resolves a restore.source key naming a location (key is its path):
// an s3 location is returned as it is; a directory location with the directory it and prefix
// name, which must exist. A missing location or one of another kind is reported (what says
// what is read from it) and nil returned.
func resolveSourceLocation(c *Config, locs map[string]int, key, name, prefixKey, prefix, what string, add addFunc) (*Location, string) {
	i, ok := locs[name]
	if !ok {
		add(key, "no location %q under locations:", name)
		return nil, ""
	}
	l := &c.Locations[i]
	switch l.Kind {
	case LocationS3:
		return l, ""
	case LocationDirectory:
		dir := filepath.Join(l.Path, filepath.FromSlash(path.Clean("/"+prefix)))
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			add(key, "%s (location %s, %s %q) is not a directory", dir, l.Name, prefixKey, prefix)
		}
		return l, dir
	default:
		add(key, "location %s is of kind %s: %s read from kind s3 or directory", l.Name, l.Kind, what)
		return nil, ""
	}
}

// dumpAuditSource is the default audit source of a target drilled from dumps: where the
// dumps are, so that backup-age and backup-size see the files the drills restore.
func dumpAuditSource(t *Target) (AuditSource, bool) {
	s := t.Restore.Source
	if s.Kind != SourceDump {
		return AuditSource{}, false
	}
	// The default pattern (every file) leaves the auditor's own default: dump and archive
	// names, not the files inside a directory dump.
	match := s.Pattern
	if _, err := path.Match(match, ""); match == DefaultDumpPattern || err != nil {
		match = "" // a bad pattern is restore.source.pattern's error, said once
	}
	if s.Location != "" {
		return AuditSource{Name: DefaultDumpAuditSourceName, Location: s.Location, Prefix: s.Prefix, Match: match}, true
	}
	return AuditSource{Name: DefaultDumpAuditSourceName, Match: match}, true
}

// DumpAuditSource reports whether an audit source is the target's own dump directory (a
// source without a location on a target drilled from restore.source.dir).
func (t *Target) DumpAuditSource(s AuditSource) bool {
	return s.Location == "" && t.Restore.Source.Kind == SourceDump && t.Restore.Source.Location == ""
}

// DefaultDumpAuditSourceName names the default audit source of a target drilled from dumps.
const DefaultDumpAuditSourceName = "dumps"

// AuditOnly reports whether firedrill only audits the target's backups: it has no snapshot
// section (snapshot.local.dataDir and repository unset, driver local) and every audit source
// names a location. Such a target needs no snapshot section; it cannot be drilled or
// snapshotted until it gets one (or a restore.source).
func (t *Target) AuditOnly() bool {
	if t.Snapshot.Driver != "local" || t.Snapshot.Local.DataDir != "" || t.Snapshot.Local.Repository != "" || len(t.Audit.Sources) == 0 {
		return false
	}
	for _, s := range t.Audit.Sources {
		if s.Location == "" {
			return false
		}
	}
	return t.Restore.Source.Kind == SourceSnapshots
}

// validateAuditOnly refuses a drill schedule on a target firedrill only audits (p is the
// target's path): serve would fail it every time.
func validateAuditOnly(p string, t *Target, add addFunc) {
	if t.Schedule != "" && t.AuditOnly() {
		add(p+".schedule", "this target is only audited (no snapshot section, no restore.source): there is nothing to drill on a schedule")
	}
}
