package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ErrNotFound means no (complete) snapshot matched.
var ErrNotFound = errors.New("snapshot not found")

// ErrDamaged means a snapshot is there but cannot be restored as the target's backup: its
// metadata is missing or unreadable, or names another target. A *DamagedError says which and why.
var ErrDamaged = errors.New("snapshot damaged")

// Statuses a listing gives each snapshot (Metadata.Status).
const (
	// StatusComplete is a snapshot whose metadata was written and read back: a restore candidate.
	StatusComplete = "complete"
	// StatusDamaged is a snapshot folder whose metadata is missing, unreadable or inconsistent.
	StatusDamaged = "damaged"
	// StatusForeign is a snapshot whose metadata names another target than the one listed.
	StatusForeign = "foreign"
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

// Restorable reports whether a listed snapshot may be restored (an empty status, from a driver
// that only lists complete snapshots, is complete).
func (m *Metadata) Restorable() bool { return m.Status == "" || m.Status == StatusComplete }

// Metadata describes one complete snapshot. It is written last, atomically: a snapshot without
// metadata is not a snapshot.
type Metadata struct {
	ID            string `json:"id"`
	Target        string `json:"target"`
	Engine        string `json:"engine"`
	EngineVersion string `json:"engineVersion"`
	Mode          string `json:"mode"`
	Driver        string `json:"driver"`
	BatchID       string `json:"batchId,omitempty"`
	// TakenAt is when the snapshot's content was fixed (the backup's stop): its recovery point.
	TakenAt    time.Time `json:"takenAt"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// FrozenSeconds is how long the database was frozen or in backup mode.
	FrozenSeconds float64 `json:"frozenSeconds"`
	SizeBytes     int64   `json:"sizeBytes"`
	// SizeUnknown is set when the storage did not report a size (a CSI driver may leave
	// status.restoreSize unset): SizeBytes is then not the snapshot's size.
	SizeUnknown bool   `json:"sizeUnknown,omitempty"`
	Files       int    `json:"files"`
	StartLSN    string `json:"startLsn,omitempty"`
	StopLSN     string `json:"stopLsn,omitempty"`
	Timeline    int    `json:"timeline,omitempty"`
	// Attributes are engine facts (server version, superuser, system identifier, ...).
	Attributes map[string]string `json:"attributes,omitempty"`
	// Links maps a symlinked directory of the data directory (pg_tblspc/16384, pg_wal) to the
	// name under which its content is stored, and keeps its original target as evidence.
	Links []Link `json:"links,omitempty"`
	// ManifestSHA256 is the SHA-256 of the manifest file, which lists every file's SHA-256.
	ManifestSHA256 string `json:"manifestSha256"`
	// Namespace holds a csi snapshot's VolumeSnapshots.
	Namespace string `json:"namespace,omitempty"`
	// Volumes are a csi snapshot's VolumeSnapshots, one per volume, all cut in one freeze.
	Volumes []Volume `json:"volumes,omitempty"`
	// Files are the files the engine returned at snapshot time (backup_label, tablespace_map),
	// kept here by drivers that have no directory to keep them in (csi).
	EngineFiles map[string][]byte `json:"engineFiles,omitempty"`
	// Status and Reason are set by listings, never stored in a snapshot's own metadata:
	// StatusComplete, or StatusDamaged/StatusForeign with the reason it cannot be restored. A
	// damaged snapshot whose metadata cannot be read has only ID, Driver, and a TakenAt that
	// estimates its place among the others (the second its id names, refined by its folder's
	// modification time).
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Result statuses of taking one snapshot (Result.Status): StatusComplete, or ResultError.
const ResultError = "error"

// Result is the outcome of taking one target's snapshot, as the snapshot command reports it:
// the snapshot taken and what retention then deleted, or why no snapshot was taken.
type Result struct {
	Target string
	// Status is StatusComplete or ResultError.
	Status    string
	Error     string
	Snapshot  *Metadata
	Retention *Retention
}

// MarshalJSON writes a taken snapshot as its metadata plus status and retention (so a consumer
// of a snapshot's JSON reads .id as before), and a failure as {target, status, error}.
func (r Result) MarshalJSON() ([]byte, error) {
	if r.Snapshot == nil {
		return json.Marshal(struct {
			Target string `json:"target"`
			Status string `json:"status"`
			Error  string `json:"error"`
		}{r.Target, r.Status, r.Error})
	}
	return json.Marshal(struct {
		Metadata
		Status    string     `json:"status"`
		Error     string     `json:"error,omitempty"`
		Retention *Retention `json:"retention,omitempty"`
	}{*r.Snapshot, r.Status, r.Error, r.Retention})
}

// Retention is what a target's retention rules did after a snapshot.
type Retention struct {
	// Rules are the rules applied, e.g. "keepLast 1, keepWithin 7d".
	Rules string `json:"rules"`
	// Kept counts the complete snapshots kept.
	Kept int `json:"kept"`
	// Deleted are the snapshots deleted, each with the rule that let it go.
	Deleted []Deletion `json:"deleted"`
	// Error says what retention could not do (a deletion that failed, an unreadable history).
	Error string `json:"error,omitempty"`
}

// Deletion is one snapshot retention deleted, and why.
type Deletion struct {
	ID      string    `json:"id"`
	TakenAt time.Time `json:"takenAt"`
	Reason  string    `json:"reason"`
}

// Volume is one VolumeSnapshot of a csi snapshot.
type Volume struct {
	// Role is "data" or "wal".
	Role           string `json:"role"`
	PVC            string `json:"pvc"`
	VolumeSnapshot string `json:"volumeSnapshot"`
	// CutAt is the VolumeSnapshot's status.creationTime: when the storage took the point in time.
	CutAt            time.Time `json:"cutAt"`
	RestoreSizeBytes int64     `json:"restoreSizeBytes,omitempty"`
}

// Link is a symlinked directory inside the data directory, stored as a directory of its own.
type Link struct {
	Path   string `json:"path"`   // relative to the data directory, e.g. pg_tblspc/16384
	Stored string `json:"stored"` // directory name under the snapshot's external/ folder
	Target string `json:"target"` // the original link target (production's path)
}

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
