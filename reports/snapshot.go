package reports

import (
	"encoding/json"
	"time"
)

// The snapshot models live here, beside the drill result, so that reports (and its renderers)
// never import restore: restore/snapshot declares them as aliases (snapshot.Metadata is
// SnapshotMetadata, and so on), so every caller and every JSON shape is unchanged.

// Statuses a listing gives each snapshot (SnapshotMetadata.Status).
const (
	// SnapshotStatusComplete is a snapshot whose metadata was written and read back: a restore
	// candidate.
	SnapshotStatusComplete = "complete"
	// SnapshotStatusDamaged is a snapshot folder whose metadata is missing, unreadable or
	// inconsistent.
	SnapshotStatusDamaged = "damaged"
	// SnapshotStatusForeign is a snapshot whose metadata names another target than the one listed.
	SnapshotStatusForeign = "foreign"
)

// Restorable reports whether a listed snapshot may be restored (an empty status, from a driver
// that only lists complete snapshots, is complete).
func (m *SnapshotMetadata) Restorable() bool {
	return m.Status == "" || m.Status == SnapshotStatusComplete
}

// SnapshotMetadata describes one complete snapshot. It is written last, atomically: a snapshot
// without metadata is not a snapshot.
type SnapshotMetadata struct {
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
	Links []SnapshotLink `json:"links,omitempty"`
	// ManifestSHA256 is the SHA-256 of the manifest file, which lists every file's SHA-256.
	ManifestSHA256 string `json:"manifestSha256"`
	// Namespace holds a csi snapshot's VolumeSnapshots.
	Namespace string `json:"namespace,omitempty"`
	// Volumes are a csi snapshot's VolumeSnapshots, one per volume, all cut in one freeze.
	Volumes []SnapshotVolume `json:"volumes,omitempty"`
	// Files are the files the engine returned at snapshot time (backup_label, tablespace_map),
	// kept here by drivers that have no directory to keep them in (csi).
	EngineFiles map[string][]byte `json:"engineFiles,omitempty"`
	// Status and Reason are set by listings, never stored in a snapshot's own metadata:
	// SnapshotStatusComplete, or SnapshotStatusDamaged/SnapshotStatusForeign with the reason it
	// cannot be restored. A damaged snapshot whose metadata cannot be read has only ID, Driver,
	// and a TakenAt that estimates its place among the others (the second its id names, refined
	// by its folder's modification time).
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// SnapshotResultError is the status of a snapshot that could not be taken (SnapshotResult.Status).
const SnapshotResultError = "error"

// SnapshotResult is the outcome of taking one target's snapshot, as the snapshot command reports
// it: the snapshot taken and what retention then deleted, or why no snapshot was taken.
type SnapshotResult struct {
	Target string
	// Status is SnapshotStatusComplete or SnapshotResultError.
	Status    string
	Error     string
	Snapshot  *SnapshotMetadata
	Retention *SnapshotRetention
}

// MarshalJSON writes a taken snapshot as its metadata plus status and retention (so a consumer
// of a snapshot's JSON reads .id as before), and a failure as {target, status, error}.
func (r SnapshotResult) MarshalJSON() ([]byte, error) {
	if r.Snapshot == nil {
		return json.Marshal(struct {
			Target string `json:"target"`
			Status string `json:"status"`
			Error  string `json:"error"`
		}{r.Target, r.Status, r.Error})
	}
	return json.Marshal(struct {
		SnapshotMetadata
		Status    string             `json:"status"`
		Error     string             `json:"error,omitempty"`
		Retention *SnapshotRetention `json:"retention,omitempty"`
	}{*r.Snapshot, r.Status, r.Error, r.Retention})
}

// SnapshotRetention is what a target's retention rules did after a snapshot.
type SnapshotRetention struct {
	// Rules are the rules applied, e.g. "keepLast 1, keepWithin 7d".
	Rules string `json:"rules"`
	// Kept counts the complete snapshots kept.
	Kept int `json:"kept"`
	// Deleted are the snapshots deleted, each with the rule that let it go.
	Deleted []SnapshotDeletion `json:"deleted"`
	// Error says what retention could not do (a deletion that failed, an unreadable history).
	Error string `json:"error,omitempty"`
}

// SnapshotDeletion is one snapshot retention deleted, and why.
type SnapshotDeletion struct {
	ID      string    `json:"id"`
	TakenAt time.Time `json:"takenAt"`
	Reason  string    `json:"reason"`
}

// SnapshotVolume is one VolumeSnapshot of a csi snapshot.
type SnapshotVolume struct {
	// Role is "data" or "wal".
	Role           string `json:"role"`
	PVC            string `json:"pvc"`
	VolumeSnapshot string `json:"volumeSnapshot"`
	// CutAt is the VolumeSnapshot's status.creationTime: when the storage took the point in time.
	CutAt            time.Time `json:"cutAt"`
	RestoreSizeBytes int64     `json:"restoreSizeBytes,omitempty"`
}

// SnapshotLink is a symlinked directory inside the data directory, stored as a directory of its
// own.
type SnapshotLink struct {
	Path   string `json:"path"`   // relative to the data directory, e.g. pg_tblspc/16384
	Stored string `json:"stored"` // directory name under the snapshot's external/ folder
	Target string `json:"target"` // the original link target (production's path)
}
