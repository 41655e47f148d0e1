package main

import (
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/drill"
)

// drillSource is where a target's drills get their backups: one line per source.
func drillSource(t *policy.Target) drill.Source {
	return drill.Repository(repository(t))
}
