package policy

// Snapshot-taking core configuration: CSI VolumeSnapshots, groups, retention.

// CSISnapshot configures the Kubernetes CSI VolumeSnapshot driver.
type CSISnapshot struct{}

// Group is a set of targets snapshotted together under one batch id.
type Group struct {
	Name    string   `yaml:"name" json:"name"`
	Targets []string `yaml:"targets" json:"targets"`
}

// Retention says which snapshots of a target to keep.
type Retention struct{}

func validateSnapshotExt(c *Config, add addFunc) {}

func applySnapshotDefaults(c *Config) {}
