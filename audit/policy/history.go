package policy

// history.*: where drill results are kept.

// History is history: where drill results are kept for later reports and the auditor.
type History struct {
	Dir string `yaml:"dir" json:"dir"`
}
