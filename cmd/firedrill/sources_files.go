package main

import (
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/source/files"
)

// fileSource is the source of a target drilled from engine-native backups in a directory
// (restore.source.kind rdb or mariadb-backup).
func fileSource(t *policy.Target) *files.Source {
	s := t.Restore.Source
	return &files.Source{Target: t.Name, Engine: t.Engine, Kind: s.Kind, Dir: s.Dir, Pattern: s.Pattern}
}
