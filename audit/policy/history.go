package policy

import "path/filepath"

// history.*: where drill results and the signed evidence records are kept.

// History is history: where drill results are kept for later reports and the auditor, and the
// evidence records (a signed hash chain per target) the compliance report is built from.
type History struct {
	Dir string `yaml:"dir" json:"dir"`
	// EvidenceDir is history.evidenceDir: the evidence records; default <dir>/.evidence.
	EvidenceDir string `yaml:"evidenceDir" json:"evidenceDir"`
	// SigningKey is history.signingKey: the Ed25519 private key ('firedrill keygen') that signs
	// each evidence record; empty: records are chained but not signed.
	SigningKey string `yaml:"signingKey" json:"signingKey,omitempty"`
}

// EvidenceDirDefault is where evidence records go when history.evidenceDir is not set.
func EvidenceDirDefault(historyDir string) string { return filepath.Join(historyDir, ".evidence") }
