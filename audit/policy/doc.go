// Package policy is firedrill's configuration: targets, objectives (RPO/RTO), snapshot and restore
// settings, checks and history. It is strict YAML, validated once into a Config; every default is
// written down in defaults.go.
package policy
