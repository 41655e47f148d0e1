package snapshot

import (
	"errors"
	"sort"
	"strings"
	"time"
)

// ErrNotFound means no (complete) snapshot matched.
var ErrNotFound = errors.New("snapshot not found")

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
