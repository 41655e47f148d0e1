package main

import (
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/source/dump"
)

// drillSource is where a target's drills get their backups: one line per source.
func drillSource(t *policy.Target) drill.Source {
	switch t.Restore.Source.Kind {
	case policy.SourceDump:
		s := t.Restore.Source
		return &dump.Source{Target: t.Name, Dir: s.Dir, Pattern: s.Pattern, Jobs: s.Jobs, BinDir: t.Restore.Local.BinDir}
	default:
		return drill.Repository(repository(t))
	}
}
