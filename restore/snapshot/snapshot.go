package snapshot

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/firedrill/firedrill/reports"
)

// ErrNotFound means no (complete) snapshot matched.
var ErrNotFound = errors.New("snapshot not found")

// ErrDamaged means a snapshot is there but cannot be restored as the target's backup: its
// metadata is missing or unreadable, or names another target. A *DamagedError says which and why.
var ErrDamaged = errors.New("snapshot damaged")

// Statuses a listing gives each snapshot (Metadata.Status).
const (
	// StatusComplete is a snapshot whose metadata was written and read back: a restore candidate.
	StatusComplete = reports.SnapshotStatusComplete
	// StatusDamaged is a snapshot folder whose metadata is missing, unreadable or inconsistent.
	StatusDamaged = reports.SnapshotStatusDamaged
	// StatusForeign is a snapshot whose metadata names another target than the one listed.
	StatusForeign = reports.SnapshotStatusForeign
)

// DamagedError is a snapshot that is not a restorable backup of the target asked for. It is
// both ErrDamaged and ErrNotFound (there is no complete snapshot under that id).
type DamagedError struct {
	// Snapshot is what could be learnt of it; Status and Reason say what is wrong.
	Snapshot Metadata
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("snapshot %s is %s: %s", e.Snapshot.ID, e.Snapshot.Status, e.Snapshot.Reason)
}

// Is makes a damaged snapshot match ErrDamaged and ErrNotFound.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged || target == ErrNotFound }

// The snapshot models are declared in package reports (so that reports never imports restore)
// and named here as before: the same types, the same JSON.
type (
	// Metadata describes one complete snapshot (reports.SnapshotMetadata). It is written last,
	// atomically: a snapshot without metadata is not a snapshot. Its Restorable method reports
	// whether a listed snapshot may be restored.
	Metadata = reports.SnapshotMetadata
	// Result is the outcome of taking one target's snapshot (reports.SnapshotResult).
	Result = reports.SnapshotResult
	// Retention is what a target's retention rules did after a snapshot (reports.SnapshotRetention).
	Retention = reports.SnapshotRetention
	// Deletion is one snapshot retention deleted, and why (reports.SnapshotDeletion).
	Deletion = reports.SnapshotDeletion
	// Volume is one VolumeSnapshot of a csi snapshot (reports.SnapshotVolume).
	Volume = reports.SnapshotVolume
	// Link is a symlinked directory inside the data directory, stored as a directory of its own
	// (reports.SnapshotLink).
	Link = reports.SnapshotLink
)

// Result statuses of taking one snapshot (Result.Status): StatusComplete, or ResultError.
const ResultError = reports.SnapshotResultError

// SortNewestFirst orders snapshots by TakenAt, newest first (ID breaks ties).
func SortNewestFirst(s []Metadata) {
	sort.SliceStable(s, func(i, j int) bool {
		if !s[i].TakenAt.Equal(s[j].TakenAt) {
			return s[i].TakenAt.After(s[j].TakenAt)
		}
		return s[i].ID > s[j].ID
	})
}

// CloneResult is a snapshot cloned into a scratch directory, and what verifying it found.
type CloneResult struct {
	// DataDir is the cloned data directory.
	DataDir string
	// Files are the files the engine returned at snapshot time (backup_label, ...), byte for byte.
	Files map[string][]byte
	// Links maps each symlinked directory of the data directory (pg_tblspc/16384) to its clone.
	Links map[string]string
	// Verified counts files whose SHA-256 matched the manifest.
	Verified int
	// Mismatches lists files that differ from the manifest, are missing, or are not in it.
	Mismatches []string
	Bytes      int64
	// Hashes are the SHA-256s of the data directory's files that matched the manifest, by
	// data-directory path ("base/5/16397.1"), as read while cloning.
	Hashes map[string]string
}

// TablespaceLocations picks the tablespace links (pg_tblspc/OID) of a clone: OID -> location.
func (c *CloneResult) TablespaceLocations() map[string]string {
	out := map[string]string{}
	for p, loc := range c.Links {
		if oid, ok := strings.CutPrefix(p, "pg_tblspc/"); ok {
			out[oid] = loc
		}
	}
	return out
}
