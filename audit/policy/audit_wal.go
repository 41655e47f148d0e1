package policy

// targets[].audit.wal.*: the WAL-archiving check.

import (
	"path"
	"path/filepath"
)

// WALAudit is targets[].audit.wal: it configures the WAL-archiving check (PostgreSQL targets).
type WALAudit struct {
	// MaxReady is the most segments allowed to wait for archiving (.ready files).
	MaxReady int `yaml:"maxReady" json:"maxReady"`
	// IdleWALBytes is how much WAL past the last archived segment still counts as an idle
	// server: PostgreSQL writes a few hundred bytes of housekeeping records (running
	// transactions, checkpoints) after a segment switch on a server nobody writes to.
	IdleWALBytes int64 `yaml:"idleWalBytes" json:"idleWalBytes"`
	// MaxReplicationLag, when set, fails a standby whose replay lag exceeds it.
	MaxReplicationLag Duration `yaml:"maxReplicationLag" json:"maxReplicationLag"`
	// FailureGrace is how long a segment may wait after a failed archive attempt before
	// archiving counts as failing; failures the archiver got past sooner are a warning.
	FailureGrace Duration `yaml:"failureGrace" json:"failureGrace"`
	// Archive is where archive_command puts segments. When set, the check looks there for the
	// last segment pg_stat_archiver names and for gaps since the newest base backup.
	Archive *WALArchive `yaml:"archive" json:"archive,omitempty"`
}

// WALArchive is targets[].audit.wal.archive, a WAL archive: a directory (Path), or a prefix in a location (an S3 bucket or
// a directory location). Segments sit directly under it, named as PostgreSQL names them,
// optionally with a compression suffix (.gz, .zst, .lz4, .bz2, .xz).
type WALArchive struct {
	Path     string `yaml:"path" json:"path,omitempty"`
	Location string `yaml:"location" json:"location,omitempty"`
	Prefix   string `yaml:"prefix" json:"prefix,omitempty"`
}

// WALArchiveDir is the directory of a target's WAL archive when it is one (audit.wal.archive
// with a path, or a prefix of a directory location); false for none or an S3 archive.
func (c *Config) WALArchiveDir(t *Target) (string, bool) {
	ar := t.Audit.WAL.Archive
	switch {
	case ar == nil:
		return "", false
	case ar.Path != "":
		return ar.Path, true
	}
	l, ok := c.Location(ar.Location)
	if !ok || l.Kind != LocationDirectory {
		return "", false
	}
	return filepath.Join(l.Path, filepath.FromSlash(path.Clean("/"+ar.Prefix))), true
}

// validateWALAudit checks audit.wal (p is its path).
func validateWALAudit(c *Config, p string, w WALAudit, locs map[string]int, add addFunc) {
	if w.MaxReady < 1 {
		add(p+".maxReady", "must be 1 or more, got %d", w.MaxReady)
	}
	if w.IdleWALBytes < 0 {
		add(p+".idleWalBytes", "must be zero or more, got %d", w.IdleWALBytes)
	}
	if w.FailureGrace.IsSet() && w.FailureGrace.Duration <= 0 {
		add(p+".failureGrace", "must be greater than zero (leave it out for the default, %s)", DefaultAuditFailureGrace)
	}
	if ar := w.Archive; ar != nil {
		ap := p + ".archive"
		switch {
		case ar.Path == "" && ar.Location == "":
			add(ap, "set path (a directory) or location (a locations[] name) and prefix")
		case ar.Path != "" && ar.Location != "":
			add(ap, "set path or location, not both")
		case ar.Path != "" && ar.Prefix != "":
			add(ap+".prefix", "only used with location (put it in path)")
		case ar.Location != "":
			if j, ok := locs[ar.Location]; !ok {
				add(ap+".location", "no location %q under locations:", ar.Location)
			} else if k := c.Locations[j].Kind; k != LocationS3 && k != LocationDirectory {
				add(ap+".location", "location %q is of kind %s: a WAL archive is an s3 prefix or a directory", ar.Location, k)
			}
		}
	}
}
