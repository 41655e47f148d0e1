package engine

import (
	"context"
	"time"
)

// Frozen is what an engine recorded while the database was frozen (or in backup mode): the
// window, engine-specific positions (LSNs, binlog coordinates), files to keep with the snapshot
// byte for byte (backup_label, tablespace_map), and files of the data directory that must be
// copied after the thaw (the WAL written during the backup).
type Frozen struct {
	StartedAt time.Time
	EndedAt   time.Time
	// Attributes are engine positions recorded with the snapshot (startLSN, stopLSN, timeline,
	// binlogFile, ...). Values never hold secrets.
	Attributes map[string]string
	// Files are kept with the snapshot byte for byte and handed back at restore.
	Files map[string][]byte
	// AfterThaw lists paths, relative to the data directory, that must be copied after the
	// thaw for the snapshot to be self-contained.
	AfterThaw []string
}

// Duration is how long the database was frozen or in backup mode.
func (f *Frozen) Duration() time.Duration { return f.EndedAt.Sub(f.StartedAt) }

// Freezer makes a database's files safe to copy. Freeze and Thaw happen on one held connection;
// Close releases everything (ending backup mode or unlocking if still frozen) and must be safe to
// call at any point, including after a failed Freeze and with a cancelled context.
type Freezer interface {
	Freeze(ctx context.Context) error
	Thaw(ctx context.Context) (*Frozen, error)
	Close(ctx context.Context) error
}

// CopyAction says what a file copy of a live data directory does with one path.
type CopyAction int

const (
	// Copy the path.
	Copy CopyAction = iota
	// Skip leaves the file or directory out entirely.
	Skip
	// SkipContents keeps the directory but none of what is in it.
	SkipContents
)

// CopyRule decides the action for rel, a slash-separated path relative to the data directory.
type CopyRule func(rel string, isDir bool) CopyAction
