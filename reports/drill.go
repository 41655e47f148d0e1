package reports

import (
	"fmt"
	"time"

	"github.com/firedrill/firedrill/checks"
)

// Status of a drill as a whole.
type Status string

const (
	// StatusPass: the snapshot restored, every check passed and the RTO was met.
	StatusPass Status = "pass"
	// StatusFail: something was proved wrong: a check failed, recovery failed, or the RTO was missed.
	StatusFail Status = "fail"
	// StatusError: the drill could not prove anything either way (infrastructure, configuration).
	StatusError Status = "error"
)

// DrillResult is the outcome of one restore drill. Its JSON form is a documented contract
// (README, "Drill result JSON"): fields are added, never renamed.
type DrillResult struct {
	SchemaVersion int       `json:"schemaVersion"`
	ID            string    `json:"id"`
	Target        string    `json:"target"`
	Engine        string    `json:"engine"`
	StartedAt     time.Time `json:"startedAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	Status        Status    `json:"status"`
	// Error says why a drill could not complete (status error, or a failed recovery).
	Error         string           `json:"error,omitempty"`
	Snapshot      *SnapshotRef     `json:"snapshot"`
	RTO           RTO              `json:"rto"`
	Phases        []Phase          `json:"phases"`
	Checks        []checks.Finding `json:"checks"`
	RecoveryPoint *time.Time       `json:"recoveryPoint"`
	// RecoveryPointSource is "freshness" (the freshness query) or "snapshot" (the backup's stop time).
	RecoveryPointSource string   `json:"recoveryPointSource,omitempty"`
	Runtime             *Runtime `json:"runtime,omitempty"`
	// Kept lists what --keep left in place, so a person can inspect it.
	Kept *Kept `json:"kept,omitempty"`
	// Interrupted is true for a drill cut short: by SIGINT/SIGTERM (its own record), or killed
	// (kill -9, a crash: the record the next drill or 'firedrill gc' wrote from its lock file).
	Interrupted bool `json:"interrupted,omitempty"`
	// CleanedUp lists what dead drills of this target had left in the scratch root (a full copy
	// of production data, perhaps a server) and this drill removed before it started.
	CleanedUp []Leftover `json:"cleanedUp,omitempty"`
	// KeptThrowaways lists --keep'd throwaways of this target the drill found and left alone
	// ('firedrill gc --include-kept' removes them).
	KeptThrowaways []Leftover `json:"keptThrowaways,omitempty"`
	// Milestones are the drill's moments as the platform recorded them (Kubernetes: snapshot
	// copy ready, PVC bound, pod scheduled, container started, database ready, checks done),
	// in order: the phases' durations come from firedrill's clock, these from the platform's.
	Milestones []Milestone `json:"milestones,omitempty"`
	// Notes say what a reader of the result must know about how the drill ran (a snapshot with
	// no backup label was drilled as crash-consistent).
	Notes []string `json:"notes,omitempty"`
	// Verification says how much of the copy amcheck read: everything (full), or what
	// changed since the last snapshot that passed a full drill (incremental).
	Verification *Verification `json:"verification,omitempty"`
}

// Verification is how a PostgreSQL drill's amcheck was scoped (checks.amcheck.mode).
type Verification struct {
	// Mode is "full" or "incremental".
	Mode string `json:"mode"`
	// Reason says why a drill configured incremental ran in full (no baseline yet, the last
	// full drill older than fullEvery, a source without per-file hashes).
	Reason string `json:"reason,omitempty"`
	// BaselineSnapshot, BaselineDrill and BaselineAt name the full drill an incremental one
	// leans on.
	BaselineSnapshot string     `json:"baselineSnapshot,omitempty"`
	BaselineDrill    string     `json:"baselineDrill,omitempty"`
	BaselineAt       *time.Time `json:"baselineAt,omitempty"`
	// DataFiles and ChangedFiles count the copy's data files and those not byte for byte the
	// baseline's.
	DataFiles    int `json:"dataFiles,omitempty"`
	ChangedFiles int `json:"changedFiles,omitempty"`
	// ReplayedFiles are counted in ChangedFiles: their bytes in the snapshot are the
	// baseline's, but the copy's WAL replay rewrites pages of them.
	ReplayedFiles int `json:"replayedFiles,omitempty"`
	// BaselineRecorded: this drill passed in full and is now the target's baseline.
	BaselineRecorded bool `json:"baselineRecorded,omitempty"`
}

// Baseline is the last snapshot of a target that passed a full drill, with its data files'
// SHA-256s: what an incremental drill compares its copy with.
type Baseline struct {
	Target     string    `json:"target"`
	Snapshot   string    `json:"snapshot"`
	Drill      string    `json:"drill"`
	VerifiedAt time.Time `json:"verifiedAt"`
	// Files are the data files' SHA-256s by data-directory path ("base/5/16397.1").
	Files map[string]string `json:"files"`
}

// GroupDrillResult is the drill of a group: the members' snapshots of one batch (one freeze,
// or one VolumeGroupSnapshot), each restored into a throwaway of its own, as one unit.
type GroupDrillResult struct {
	SchemaVersion int       `json:"schemaVersion"`
	Group         string    `json:"group"`
	BatchID       string    `json:"batchId"`
	StartedAt     time.Time `json:"startedAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	// Status is the members' by Overall's precedence; error when no batch could be drilled.
	Status  Status         `json:"status"`
	Error   string         `json:"error,omitempty"`
	Members []*DrillResult `json:"members"`
}

// Milestone is one moment of a drill as the platform recorded it.
type Milestone struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
	// Source says whose clock: "kubernetes" (an object's timestamps) or "firedrill" (observed).
	Source string `json:"source"`
}

// Leftover is a drill's scratch directory found by a later drill or by 'firedrill gc'.
type Leftover struct {
	ScratchDir string `json:"scratchDir"`
	DrillID    string `json:"drillId"`
	Target     string `json:"target"`
	// StartedAt is when its drill started (unknown for a directory without a lock file).
	StartedAt *time.Time `json:"startedAt,omitempty"`
	// PID is the firedrill process that ran the drill.
	PID int `json:"pid,omitempty"`
	// Phase is the drill phase it was in when last heard of.
	Phase string `json:"phase,omitempty"`
	Bytes int64  `json:"bytes"`
	Kept  bool   `json:"kept"`
	// State is dead (its drill is gone), kept (--keep), live (its drill still runs) or orphan
	// (a directory with no lock file: left by a firedrill that kept none).
	State string `json:"state"`
	// Action is what was done: removed, left (kept, live, or younger than gc --older-than),
	// failed (see Error), or would-remove (gc --dry-run).
	Action string `json:"action"`
	// Stopped says what was stopped or released (a server, a shared memory segment).
	Stopped []string `json:"stopped,omitempty"`
	// Recorded is true when an interrupted record of its drill was written to the history.
	Recorded bool   `json:"recorded,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Leftover states and actions.
const (
	LeftoverDead   = "dead"
	LeftoverKept   = "kept"
	LeftoverLive   = "live"
	LeftoverOrphan = "orphan"

	LeftoverRemoved = "removed"
	LeftoverLeft    = "left"
	LeftoverFailed  = "failed"
	// LeftoverWouldRemove is what a dry run (gc --dry-run) reports instead of removing.
	LeftoverWouldRemove = "would-remove"
)

// SchemaVersion of DrillResult's JSON.
const SchemaVersion = 1

// SnapshotRef identifies the snapshot a drill restored.
type SnapshotRef struct {
	ID            string    `json:"id"`
	TakenAt       time.Time `json:"takenAt"`
	Driver        string    `json:"driver,omitempty"`
	EngineVersion string    `json:"engineVersion,omitempty"`
	SizeBytes     int64     `json:"sizeBytes,omitempty"`
	AgeSeconds    float64   `json:"ageSeconds"`
}

// RTO compares the drill's time to "verified and usable" with the objective.
type RTO struct {
	TargetSeconds float64 `json:"targetSeconds"`
	ActualSeconds float64 `json:"actualSeconds"`
	Met           bool    `json:"met"`
}

// Phase is one timed step of the drill.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	// CountsTowardRTO is false for teardown work done after the copy was verified.
	CountsTowardRTO bool `json:"countsTowardRto"`
	// Concurrent marks checks that ran side by side (amcheck and the row counts): their
	// seconds overlap, so their sum exceeds the wall time they took together.
	Concurrent bool `json:"concurrent,omitempty"`
}

// Runtime describes where the throwaway database ran.
type Runtime struct {
	Kind            string `json:"kind"`
	EngineVersion   string `json:"engineVersion,omitempty"`
	RunAs           string `json:"runAs,omitempty"`
	Listen          string `json:"listen"`
	NetworkIsolated bool   `json:"networkIsolated"`
	// Isolation says what kept the throwaway from production, and what was not possible.
	Isolation *Isolation `json:"isolation,omitempty"`
	// Namespace, Pod and Node locate the Kubernetes runtime's throwaway pod.
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Node      string `json:"node,omitempty"`
}

// Isolation is what isolated the throwaway server from production (README, "Isolation").
type Isolation struct {
	// Namespaces the server ran in (mount, pid, ipc, uts, net); empty when none.
	Namespaces []string `json:"namespaces"`
	UID        int      `json:"uid"`
	GID        int      `json:"gid"`
	User       string   `json:"user"`
	// UserFrom is "sandbox" (a uid no account has, chosen for this drill), "runAsUser"
	// (restore.local.runAsUser, as configured) or "current" (firedrill's own user).
	UserFrom   string `json:"userFrom"`
	Filesystem string `json:"filesystem"`
	// Masked are production paths inside the trees shown to the server, covered empty.
	Masked []string `json:"masked,omitempty"`
	// NotPossible says what isolation could not be had, and why.
	NotPossible []string `json:"notPossible,omitempty"`
	// Proof is what the drill saw of production from inside the running throwaway.
	Proof *IsolationProof `json:"proof,omitempty"`
}

// IsolationProof is the probe of production's paths from inside the throwaway.
type IsolationProof struct {
	Method string            `json:"method"`
	Paths  []IsolationProbed `json:"paths"`
	// Endpoints are the network probes (the Kubernetes runtime).
	Endpoints []IsolationReach `json:"endpoints,omitempty"`
}

// IsolationProbed is one production path as the throwaway's superuser saw it.
type IsolationProbed struct {
	Path    string `json:"path"`
	Visible bool   `json:"visible"`
	Detail  string `json:"detail"`
}

// IsolationReach is one production endpoint the throwaway tried to open a TCP connection to.
type IsolationReach struct {
	// Endpoint is host:port (the production database, the API server, restore.kubernetes.probeTargets).
	Endpoint string `json:"endpoint"`
	// Reachable is true when the connection opened: egress is not denied.
	Reachable bool   `json:"reachable"`
	Detail    string `json:"detail"`
}

// Kept is what a --keep drill left behind.
type Kept struct {
	ScratchDir string `json:"scratchDir"`
	SocketDir  string `json:"socketDir,omitempty"`
	ServerLog  string `json:"serverLog,omitempty"`
	PID        int    `json:"pid,omitempty"`
	Connect    string `json:"connect,omitempty"`
	// Container is the Docker runtime's container left running.
	Container string `json:"container,omitempty"`
	// Objects are the Kubernetes runtime's objects left in place (kind namespace/name).
	Objects []string `json:"objects,omitempty"`
}

// Finalize derives Status from the findings and from what the drill already decided (a drill
// that could not complete is StatusError with Error set). The precedence is checks.Decisive's: a
// proven failure makes the drill fail even if it then errored (Error keeps saying why it could
// not complete); else anything that could not check makes it error; else it passes (warnings
// pass).
func (r *DrillResult) Finalize() {
	r.Status = FromFinding(checks.Decisive(r.Status.finding(), checks.Worst(r.Checks)))
}

// FromFinding maps the status that decides a set of findings to a drill status: fail ⇒ fail,
// error ⇒ error, warn and pass ⇒ pass.
func FromFinding(s checks.Status) Status {
	switch s {
	case checks.Fail:
		return StatusFail
	case checks.Pass, checks.Warn:
		return StatusPass
	}
	return StatusError
}

// finding is the finding status a drill status stands for ("" decides nothing: pass).
func (s Status) finding() checks.Status {
	switch s {
	case "", StatusPass:
		return checks.Pass
	case StatusFail:
		return checks.Fail
	}
	return checks.Error
}

// Overall is the status of several drills (one command over several targets), by the same
// precedence: any fail ⇒ fail; else any error ⇒ error; else pass.
func Overall(ss ...Status) Status {
	w := checks.Pass
	for _, s := range ss {
		w = checks.Decisive(w, s.finding())
	}
	return FromFinding(w)
}

// HumanBytes formats a byte count with binary units: 512 B, 1.5 KiB, 3.2 GiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
