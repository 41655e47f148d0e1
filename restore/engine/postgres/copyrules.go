package postgres

import (
	"path"
	"strings"

	"github.com/firedrill/firedrill/restore/engine"
)

// Files and directories PostgreSQL's documentation ("Making a Base Backup Using the Low Level
// API") and pg_basebackup leave out of a base backup.
var (
	excludeFiles = map[string]bool{
		"postmaster.pid":           true,
		"postmaster.opts":          true,
		"postgresql.auto.conf.tmp": true,
		"current_logfiles.tmp":     true,
		"backup_label":             true, // a stale one would mislead recovery
		"tablespace_map":           true,
		"backup_label.old":         true,
		"backup_manifest":          true,
		"standby.signal":           true, // the throwaway must never become a standby...
		"recovery.signal":          true, // ...or fetch WAL from production's archive
		"pg_internal.init":         true, // relcache init files are rebuilt at start
		"recovery.conf":            true, // pre-12 recovery settings
		"recovery.done":            true,
	}
	excludeDirContents = map[string]bool{
		"pg_wal":       true, // the needed segments are copied after pg_backup_stop
		"pg_xlog":      true,
		"pg_dynshmem":  true,
		"pg_notify":    true,
		"pg_replslot":  true,
		"pg_serial":    true,
		"pg_snapshots": true,
		"pg_stat_tmp":  true,
		"pg_subtrans":  true,
	}
)

var _ engine.CopyRule = CopyRule

// CopyRule decides what an online copy of a data directory does with rel, a slash-separated
// path relative to the data directory.
func CopyRule(rel string, isDir bool) engine.CopyAction {
	base := path.Base(rel)
	if !isDir && excludeFiles[base] {
		return engine.Skip
	}
	// pgsql_tmp: temporary files; .s.PGSQL.*: a unix socket and its lock file when
	// unix_socket_directories is the data directory.
	if strings.HasPrefix(base, "pgsql_tmp") || strings.HasPrefix(base, ".s.PGSQL.") {
		return engine.Skip
	}
	if isDir && excludeDirContents[rel] {
		return engine.SkipContents
	}
	if isDir && rel == "pg_wal/archive_status" {
		return engine.SkipContents
	}
	return engine.Copy
}
