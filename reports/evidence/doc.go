// Package evidence keeps tamper-evident evidence records of drills, audits and snapshots: one
// record per run, chained per target by the SHA-256 of the previous record's stored bytes, each
// stored as a DSSE envelope over an in-toto Statement (signed with Ed25519 when a key is
// configured) so an auditor can check it with standard tooling as well as with Verify.
package evidence
