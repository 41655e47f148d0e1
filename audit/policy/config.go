package policy

import (
	"github.com/firedrill/firedrill/checks"
)

// Config is a validated firedrill configuration. Build it with Load or Parse.
type Config struct {
	Targets []Target `yaml:"targets" json:"targets"`
	History History  `yaml:"history" json:"history"`
	// Groups are targets snapshotted together under one batch id (snapshot_ext.go).
	Groups []Group `yaml:"groups" json:"groups,omitempty"`
	// Locations are where backup copies live, for the auditor (audit_ext.go).
	Locations []Location `yaml:"locations" json:"locations,omitempty"`
	// File is where the configuration was read from ("" for an embedded one).
	File string `yaml:"-" json:"-"`
}

// History is where drill results are kept for later reports and the auditor.
type History struct {
	Dir string `yaml:"dir" json:"dir"`
}

// Target is one database firedrill snapshots, restores and audits.
type Target struct {
	Name       string        `yaml:"name" json:"name"`
	Engine     string        `yaml:"engine" json:"engine"`
	Connection Connection    `yaml:"connection" json:"connection"`
	Snapshot   SnapshotSpec  `yaml:"snapshot" json:"snapshot"`
	Restore    RestoreSpec   `yaml:"restore" json:"restore"`
	Objectives Objectives    `yaml:"objectives" json:"objectives"`
	Checks     checks.Config `yaml:"checks" json:"checks"`
	// Retention says which snapshots to keep (snapshot_ext.go).
	Retention Retention `yaml:"retention" json:"retention"`
	// Audit configures the auditor's checks of this target (audit_ext.go).
	Audit AuditSpec `yaml:"audit" json:"audit"`
}

// Connection says how to reach the production database. The DSN may hold a password: it is
// never logged, printed or reported.
type Connection struct {
	DSN    string `yaml:"dsn" json:"-"`
	DSNEnv string `yaml:"dsnEnv" json:"dsnEnv,omitempty"`
}

// SnapshotSpec says how snapshots of the target are taken and where they are kept.
type SnapshotSpec struct {
	Driver string `yaml:"driver" json:"driver"`
	Mode   string `yaml:"mode" json:"mode"`
	// FastCheckpoint starts the backup with an immediate checkpoint (default true).
	FastCheckpoint *bool `yaml:"fastCheckpoint" json:"fastCheckpoint,omitempty"`
	// MaxFreeze bounds how long the database may stay frozen (locked) for a snapshot.
	MaxFreeze Duration      `yaml:"maxFreeze" json:"maxFreeze"`
	Local     LocalSnapshot `yaml:"local" json:"local"`
	CSI       CSISnapshot   `yaml:"csi" json:"csi"`
}

// LocalSnapshot configures the directory driver.
type LocalSnapshot struct {
	DataDir    string `yaml:"dataDir" json:"dataDir"`
	Repository string `yaml:"repository" json:"repository"`
	// Parallel is how many files are copied at once.
	Parallel int `yaml:"parallel" json:"parallel"`
}

// RestoreSpec says where throwaway copies run.
type RestoreSpec struct {
	Runtime string       `yaml:"runtime" json:"runtime"`
	Local   LocalRuntime `yaml:"local" json:"local"`
	// Docker configures restore.runtime: docker (restore.local.scratchDir and startTimeout
	// apply to it too).
	Docker DockerRuntime `yaml:"docker" json:"docker"`
	// Kubernetes configures restore.runtime: kubernetes (restore.go).
	Kubernetes KubernetesRuntime `yaml:"kubernetes" json:"kubernetes"`
}

// DockerRuntime runs the throwaway database in a container of a Docker engine.
type DockerRuntime struct {
	// Image is the server's image; empty: postgres:<major> of the snapshot.
	Image string `yaml:"image" json:"image,omitempty"`
	// UID is the image's database user; 0: found by running 'id postgres' in the image.
	UID int `yaml:"uid" json:"uid,omitempty"`
	// Memory limits the container (bytes, or with a unit: 512MiB, 2GiB, 1G); "0": no limit.
	Memory string `yaml:"memory" json:"memory"`
	// CPUs limits the container (1.5 = one and a half CPUs); 0: no limit.
	CPUs *float64 `yaml:"cpus" json:"cpus"`
}

// MemoryBytes is Memory in bytes (validated at load).
func (d DockerRuntime) MemoryBytes() (int64, error) { return ParseBytes(d.Memory) }

// NanoCPUs is CPUs as the Docker Engine API counts them.
func (d DockerRuntime) NanoCPUs() int64 {
	if d.CPUs == nil {
		return 0
	}
	return int64(*d.CPUs * 1e9)
}

// LocalRuntime runs the throwaway database as a local process.
type LocalRuntime struct {
	// BinDir overrides the server binaries found from the snapshot's PG_VERSION.
	BinDir string `yaml:"binDir" json:"binDir,omitempty"`
	// ScratchDir is where scratch clones are made (a fresh subdirectory per drill).
	ScratchDir string `yaml:"scratchDir" json:"scratchDir"`
	// RunAsUser is the unprivileged user the server runs as when firedrill runs as root.
	RunAsUser string `yaml:"runAsUser" json:"runAsUser,omitempty"`
	// Listen is "socket" (a unix socket in the scratch directory) or "tcp" (127.0.0.1, a free port).
	Listen string `yaml:"listen" json:"listen"`
	// IsolateNetwork runs the server in an empty network namespace when firedrill is root.
	IsolateNetwork *bool `yaml:"isolateNetwork" json:"isolateNetwork,omitempty"`
	// StartTimeout bounds the server start and recovery.
	StartTimeout Duration `yaml:"startTimeout" json:"startTimeout"`
}

// Objectives are the recovery objectives the target is held to.
type Objectives struct {
	// RTO: the longest a restore may take, from the drill's start to verified and usable.
	RTO Duration `yaml:"rto" json:"rto"`
	// RPO: the most data, in time, the target may lose.
	RPO Duration `yaml:"rpo" json:"rpo"`
	// DrillEvery: how recent the last passing drill must be.
	DrillEvery Duration `yaml:"drillEvery" json:"drillEvery"`
}

// Target returns the target called name.
func (c *Config) Target(name string) (*Target, bool) {
	for i := range c.Targets {
		if c.Targets[i].Name == name {
			return &c.Targets[i], true
		}
	}
	return nil, false
}

// TargetNames lists the targets' names in order.
func (c *Config) TargetNames() []string {
	out := make([]string, len(c.Targets))
	for i, t := range c.Targets {
		out[i] = t.Name
	}
	return out
}
