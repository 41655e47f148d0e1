package main

import (
	"context"

	"github.com/firedrill/firedrill/audit"
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/pgbackrest"
)

// drillSource is where a target's drills get their backups: one line per source.
func drillSource(t *policy.Target) drill.Source {
	switch t.Restore.Source.Kind {
	case policy.SourceDump:
		return dumpSource(t)
	case policy.SourceBaseBackup:
		return audit.BaseBackupSource(t)
	case policy.SourcePgBackRest:
		s := t.Restore.Source
		return &pgbackrest.Source{Target: t.Name, Stanza: s.Stanza, Config: s.Config, RepoPath: s.RepoPath, Recovery: s.RecoveryTarget(), BinDir: t.Restore.Local.BinDir}
	case policy.SourceRDB, policy.SourceMariaDBBackup, policy.SourceMariaDBDump, policy.SourceMongoDump:
		return fileSource(t)
	default:
		return drill.Repository(repository(t))
	}
}

// foreignBackups lists the backups of a target whose drills restore what another tool made
// (dump files, engine-native backups), for 'snapshots'; nil for a target drilled from its own snapshots.
func foreignBackups(t *policy.Target) (list func(context.Context) ([]snapshot.Metadata, error), where string) {
	switch t.Restore.Source.Kind {
	case policy.SourceDump:
		return drillSource(t).List, dumpWhere(t)
	case policy.SourceBaseBackup:
		src := audit.BaseBackupSource(t)
		return src.List, src.Where()
	case policy.SourcePgBackRest:
		return drillSource(t).List, "pgBackRest stanza " + t.Restore.Source.Stanza
	case policy.SourceRDB, policy.SourceMariaDBBackup, policy.SourceMariaDBDump, policy.SourceMongoDump:
		return fileSource(t).List, fileSource(t).Where()
	}
	return nil, ""
}
