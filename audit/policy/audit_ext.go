package policy

// Auditor configuration: backup locations and per-target audit rules.

// Location is a place backup copies live (an S3 bucket, a local repository, CSI snapshots).
type Location struct {
	Name string `yaml:"name" json:"name"`
}

// AuditSpec configures the auditor's checks of one target.
type AuditSpec struct{}

func validateAudit(c *Config, add addFunc) {}

func applyAuditDefaults(c *Config) {}
