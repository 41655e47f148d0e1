// Package policy is firedrill's configuration: targets, objectives (RPO/RTO), snapshot and restore
// settings, checks and history. It is strict YAML, validated once into a Config; every default is
// written down in defaults.go.
//
// One file per subject, named after its keys: targets.go (targets[], connection), snapshot.go
// (snapshot.*, retention, groups[]), restore.go (restore.*), objectives.go, checks.go (the
// validation of checks.*, whose type is package checks'), audit.go, audit_wal.go and
// audit_copies.go (audit.*), locations.go (locations[]), history.go, envkeys.go (every *Env key).
// Each holds its types, their validation and their helpers; defaults.go holds every default,
// load.go the parsing and config.go the root and the walk through the subjects.
package policy
