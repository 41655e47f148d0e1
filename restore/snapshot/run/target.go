package run

import (
	"time"

	"github.com/firedrill/firedrill/restore/snapshot/retention"
)

// Target is what the runner needs of one target; the caller maps its validated configuration
// to it (the runner knows nothing of the YAML).
type Target struct {
	Name   string
	Engine string
	// Mode is the engine's snapshot mode (online, crash-consistent).
	Mode string
	// DSN resolves the target's connection string when a snapshot is taken (it may read the
	// environment, and fail for this target alone); the runner never keeps it.
	DSN func() (string, error)
	// Driver is csi.DriverName or local (any other value).
	Driver    string
	MaxFreeze time.Duration
	// FastCheckpoint asks the engine for an immediate checkpoint.
	FastCheckpoint bool
	Local          LocalSnapshot
	CSI            CSISnapshot
	// Retention are the rules applied after each successful snapshot (zero: none).
	Retention retention.Policy
}

// LocalSnapshot configures the local driver: the data directory copied and its repository.
type LocalSnapshot struct {
	DataDir    string
	Repository string
	// Parallel is how many files are copied at once.
	Parallel int
}

// CSISnapshot configures the csi driver.
type CSISnapshot struct {
	Namespace string
	// PVC is the data volume; WALPVC, when set, is cut in the same freeze.
	PVC, WALPVC string
	ClassName   string
	// ReadyTimeout bounds the wait for readyToUse after the cut.
	ReadyTimeout time.Duration
	// Kubeconfig names the clients the Factory hands out ("" = the default loading rules).
	Kubeconfig string
}

// Group is a group of targets snapshotted under one batch id.
type Group struct {
	Name string
	// Members are the group's targets, in the group's order.
	Members   []Target
	MaxFreeze time.Duration
	// VolumeGroupSnapshot is take.VolumeGroupAuto, take.VolumeGroupRequired or
	// take.VolumeGroupDisabled.
	VolumeGroupSnapshot string
	// Namespace, ClassName and Selector configure the VolumeGroupSnapshot (used when every
	// member uses the csi driver).
	Namespace string
	ClassName string
	Selector  map[string]string
}
