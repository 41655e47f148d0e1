package compliance

import "github.com/firedrill/firedrill/reports/evidence"

// The evidence types the report is built from, under short names.
type (
	// Stored is an evidence record as read back from its store.
	Stored = evidence.Stored
	// VerifyReport is what verifying the store's signatures and chains found.
	VerifyReport = evidence.VerifyReport
	// TargetVerify is one target's chain.
	TargetVerify = evidence.TargetVerify
)
