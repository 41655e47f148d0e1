package policy

// targets[].restore.source keys of the backups another tool wrote for an engine other than
// PostgreSQL, in a directory or an S3 location: Redis RDB files and AOF directories (kind rdb),
// mariadb-backup/xtrabackup full backups (kind mariadb-backup), mariadb-dump/mysqldump SQL
// files (kind mariadb-dump), mongodump --archive files (kind mongodump).

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/firedrill/firedrill/restore/engine"
)

// Engine-native backup directories (restore.source.kind).
const (
	SourceRDB           = "rdb"
	SourceMariaDBBackup = "mariadb-backup"
	SourceMariaDBDump   = "mariadb-dump"
	SourceMongoDump     = "mongodump"
)

// fileSourceEngines says which engines each engine-native kind holds backups of, by the
// engine registry's name (an alias, such as mysql for mariadb, resolves through
// engine.Lookup). It is the one place a kind meets an engine: the backups' format is the
// engine's, and only that engine's drill can check and start them.
var fileSourceEngines = map[string][]string{
	SourceRDB:           {"redis"},
	SourceMariaDBBackup: {"mariadb"},
	SourceMariaDBDump:   {"mariadb"},
	SourceMongoDump:     {"mongodb"},
}

// Files reports whether the source copies another tool's backups of an engine other than
// PostgreSQL (kinds rdb, mariadb-backup, mariadb-dump, mongodump).
func (s RestoreSource) Files() bool { _, ok := fileSourceEngines[s.Kind]; return ok }

// ListsBackups reports whether the source lists the backups its drills restore itself (base
// backups, pgBackRest, engine-native backup directories): the audit's default source of such
// a target is that list (backup-age, backup-size).
func (s RestoreSource) ListsBackups() bool { return s.Physical() || s.Files() }

// fileSourceFor names the kinds of an engine's backups, for messages ("" when none).
func fileSourceFor(eng string) string {
	sp, ok := engine.Lookup(eng)
	if !ok {
		return ""
	}
	var kinds []string
	for _, kind := range slices.Sorted(maps.Keys(fileSourceEngines)) {
		if slices.Contains(fileSourceEngines[kind], sp.Name) {
			kinds = append(kinds, kind)
		}
	}
	return strings.Join(kinds, " or ")
}

// FilesS3 returns the S3 location the backups of a file kind are in and the full key prefix,
// or nil when they are in a directory (Dir, which a directory location resolves to).
func (s RestoreSource) FilesS3() (*Location, string) {
	if !s.Files() || s.resolved == nil || s.resolved.Kind != LocationS3 {
		return nil, ""
	}
	l := *s.resolved
	return &l, s3Prefix(l.S3.Prefix+s.Prefix, s.Kind)
}

// s3Prefix is the key prefix of a file kind's backups: a mariadb-backup backup is a
// "directory" of objects under it, so it names a directory (ends in "/"); the file kinds'
// backups are objects whose keys start with it, as a dump's.
func s3Prefix(p, kind string) string {
	if kind == SourceMariaDBBackup {
		return dirPrefix(p)
	}
	return p
}

// validateFileSource checks the keys of kinds rdb, mariadb-backup, mariadb-dump and
// mongodump (p is restore.source's path, t the target).
func validateFileSource(p string, t *Target, add addFunc) {
	s := t.Restore.Source
	if !s.Files() {
		return
	}
	if sp, ok := engine.Lookup(t.Engine); ok && !slices.Contains(fileSourceEngines[s.Kind], sp.Name) {
		instead := "another kind (snapshots: the target's own)"
		if k := fileSourceFor(t.Engine); k != "" {
			instead = "kind " + k
		}
		add(p+".kind", "kind %s holds backups of %s, not of engine %s: use %s", s.Kind, strings.Join(fileSourceEngines[s.Kind], ", "), t.Engine, instead)
	}
	switch fi, err := os.Stat(s.Dir); {
	case s.Location != "": // restore_dump.go resolves it
	case s.Dir == "":
		add(p+".dir", "required with kind %s: the directory that holds the backups (one per file or directory), or location: a locations[] entry (s3 or directory)", s.Kind)
	case err != nil || !fi.IsDir():
		add(p+".dir", "%s is not a directory", s.Dir)
	}
	if _, err := filepath.Match(s.Pattern, ""); err != nil || strings.Contains(s.Pattern, "/") {
		add(p+".pattern", "%q is not a glob on backup names (such as dump-*.rdb, full-* or shop-*.sql.gz)", s.Pattern)
	}
	if s.Archive != "" || s.ArchiveLocation != "" || s.Stanza != "" || s.Config != "" || s.RepoPath != "" || s.Recovery.Target != "" {
		add(p, "archive, archiveLocation, recovery, stanza, config and repoPath are keys of kinds basebackup and pgbackrest")
	}
	if r := t.Restore.Runtime; r != "" && r != "local" && r != "docker" {
		add(p+".kind", "kind %s is copied into the drill's local scratch directory: use restore.runtime: local or docker (got %q)", s.Kind, r)
	}
}
