package files

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	enginemariadb "github.com/firedrill/firedrill/restore/engine/mariadb"
	enginered "github.com/firedrill/firedrill/restore/engine/redis"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/internal/entries"
)

// Driver is the snapshot driver name an entry's metadata carries.
const Driver = "files"

// Kinds of backup directories (restore.source.kind).
const (
	// KindRDB is a directory of Redis RDB files (*.rdb, *.rdb.gz) and AOF directories.
	KindRDB = "rdb"
	// KindMariaDBBackup is a directory of mariadb-backup (or xtrabackup) full backups.
	KindMariaDBBackup = "mariadb-backup"
	// KindMariaDBDump is a directory of mariadb-dump/mysqldump SQL files (*.sql, *.sql.gz).
	KindMariaDBDump = "mariadb-dump"
	// KindMongoDump is a directory of mongodump --archive files (*.archive, *.archive.gz).
	KindMongoDump = "mongodump"
)

// Kinds lists the kinds this source reads.
var Kinds = []string{KindRDB, KindMariaDBBackup, KindMariaDBDump, KindMongoDump}

// Attribute keys of an entry's metadata (besides the engine's own, such as redis's rdbFile).
const (
	// AttrFormat is what the entry is: rdb, aof or mariadb-backup.
	AttrFormat = "format"
	// AttrCompression is "gzip" for an RDB decompressed while it is copied.
	AttrCompression = "compression"
	// AttrBackupType is xtrabackup_checkpoints' backup_type (full-backuped, full-prepared).
	AttrBackupType = "backupType"
)

// Formats of entries (AttrFormat).
const (
	FormatRDB           = "rdb"
	FormatAOF           = "aof"
	FormatMariaDBBackup = "mariadb-backup"
	// FormatSQL is a mariadb-dump/mysqldump SQL file (drill.LogicalSQL once materialised).
	FormatSQL = "sql"
	// FormatMongoArchive is a mongodump --archive file (drill.LogicalMongoArchive).
	FormatMongoArchive = "mongodump-archive"
)

// sidecarSuffix names an entry's checksum file: sha256sum's output for it (a file), or for
// the files inside it, by path relative to it (a directory).
const sidecarSuffix = entries.SidecarSuffix

// checkpointsFile marks a mariadb-backup/xtrabackup backup directory.
const checkpointsFile = "xtrabackup_checkpoints"

// Source lists and copies the backups of one target's directory.
type Source struct {
	Target string
	// Engine is the target's engine, recorded in each entry's metadata.
	Engine string
	// Kind is one of Kinds.
	Kind string
	Dir  string
	// S3, when set, is where the backups are instead of Dir: the chosen one is downloaded
	// into scratch, verified against the store's checksums and its sidecar object, and
	// materialised from there.
	S3 *S3Location
	// Pattern is a glob on entry names; empty: every entry.
	Pattern string
	// Log hears what listing passes over (incremental backups); nil: nothing is logged.
	Log *slog.Logger
}

// List returns the directory's backups, newest (by modification time) first.
func (s *Source) List(ctx context.Context) ([]snapshot.Metadata, error) {
	if !slices.Contains(Kinds, s.Kind) {
		return nil, fmt.Errorf("while listing %s: unknown kind %q (kinds: %s)", s.Where(), s.Kind, strings.Join(Kinds, ", "))
	}
	if s.S3 != nil {
		return s.listS3(ctx)
	}
	return s.dir().List(ctx)
}

// Get returns the backup called id (its name in the directory, its key relative to the S3
// prefix).
func (s *Source) Get(ctx context.Context, id string) (*snapshot.Metadata, error) {
	if s.S3 != nil {
		return s.getS3(ctx, id)
	}
	return s.dir().Get(id)
}

// Where names the directory or S3 prefix, for messages.
func (s *Source) Where() string {
	if s.S3 != nil {
		return s.S3.Where + " (" + s.Kind + ")"
	}
	return s.Dir + " (" + s.Kind + ")"
}

// dir is the source's directory as a directory of backups; entries of the right shape that
// cannot be restored on their own (incremental backups) are logged as passed over.
func (s *Source) dir() entries.Dir {
	return entries.Dir{Path: s.Dir, Pattern: s.Pattern, Plural: "backups", One: s.Kind + " backup", Describe: s.describe,
		Skip: func(name string, err error) {
			if skip := (skipped{}); errors.As(err, &skip) && s.Log != nil {
				s.Log.Info("passing over a backup", "dir", s.Dir, "entry", name, "reason", skip.reason)
			}
		}}
}

// skipped is an entry of the right shape that is not restorable on its own.
type skipped struct{ reason string }

func (e skipped) Error() string { return e.reason }

// notBackup is an entry that is not a backup of the source's kind.
type notBackup struct{ name, kind string }

func (e notBackup) Error() string { return fmt.Sprintf("%s is not a %s backup", e.name, e.kind) }

func (s *Source) describe(name string) (*snapshot.Metadata, error) {
	path := filepath.Join(s.Dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{}
	var taken time.Time
	size, count := fi.Size(), 1
	switch s.Kind {
	case KindRDB:
		switch {
		case fi.Mode().IsRegular() && strings.HasSuffix(name, ".rdb"):
			attrs[AttrFormat] = FormatRDB
			attrs[enginered.AttrRDBFile] = name
		case fi.Mode().IsRegular() && strings.HasSuffix(name, ".rdb.gz"):
			attrs[AttrFormat] = FormatRDB
			attrs[AttrCompression] = "gzip"
			attrs[enginered.AttrRDBFile] = strings.TrimSuffix(name, ".gz")
		case fi.IsDir():
			newest, ok := aofDir(path)
			if !ok {
				return nil, notBackup{name, "Redis AOF"}
			}
			attrs[AttrFormat] = FormatAOF
			taken = newest
			size, count = tree(path)
		default:
			return nil, notBackup{name, "Redis RDB"}
		}
	case KindMariaDBDump, KindMongoDump:
		if !fi.Mode().IsRegular() {
			return nil, notBackup{name, s.Kind}
		}
		format, gz, ok := logicalName(s.Kind, name)
		if !ok {
			return nil, notBackup{name, s.Kind}
		}
		if s.Kind == KindMongoDump {
			gz = sniffGzip(path) // mongodump --archive --gzip compresses the whole stream
		}
		attrs[AttrFormat] = format
		if gz {
			attrs[AttrCompression] = "gzip"
		}
	case KindMariaDBBackup:
		if !fi.IsDir() {
			return nil, notBackup{name, "mariadb-backup"}
		}
		cp, err := os.Stat(filepath.Join(path, checkpointsFile))
		if err != nil {
			return nil, notBackup{name, "mariadb-backup"}
		}
		typ := infoField(filepath.Join(path, checkpointsFile), "backup_type")
		if typ == "incremental" {
			return nil, skipped{fmt.Sprintf("%s is an incremental backup (backup_type = incremental): only full backups are drilled on their own", name)}
		}
		attrs[AttrFormat] = FormatMariaDBBackup
		// The binary log position the backup ends at: the drill names it as where a
		// point-in-time recovery would continue.
		if pos, err := enginemariadb.ReadBinlogInfo(path); err == nil {
			maps.Copy(attrs, pos)
		}
		if typ != "" {
			attrs[AttrBackupType] = typ
		}
		taken = cp.ModTime()
		size, count = tree(path)
	}
	if taken.IsZero() {
		taken = fi.ModTime()
	}
	taken = taken.UTC()
	m := &snapshot.Metadata{ID: name, Target: s.Target, Engine: s.Engine, Mode: s.mode(), Driver: Driver,
		TakenAt: taken, FinishedAt: taken, SizeBytes: size, Files: count, Attributes: attrs, Status: "complete"}
	switch s.Kind {
	case KindMariaDBBackup:
		m.EngineVersion = infoField(filepath.Join(path, "xtrabackup_info"), "server_version")
	case KindMariaDBDump:
		m.EngineVersion = sqlHeader(path, attrs[AttrCompression] == "gzip").ServerVersion
	}
	return m, nil
}

// mode is the entries' snapshot mode: logical for dumps, native for the engine's files.
func (s *Source) mode() string {
	if s.Kind == KindMariaDBDump || s.Kind == KindMongoDump {
		return "logical"
	}
	return "native"
}

// aofDir says whether dir is a Redis AOF directory (Redis 7's manifest, or appendonly*.aof
// files) and when its newest file was written: an append-only log grows until it is copied.
func aofDir(dir string) (time.Time, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return time.Time{}, false
	}
	var newest time.Time
	found := false
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if strings.HasSuffix(n, ".aof.manifest") || (strings.HasPrefix(n, "appendonly") && strings.HasSuffix(n, ".aof")) {
			found = true
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	return newest, found
}

// infoField reads "name = value" from one of mariadb-backup's key-value files.
func infoField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return infoFieldIn(f, name)
}

// infoFieldFrom reads "name = value" from the content of one of mariadb-backup's key-value
// files (an S3 object).
func infoFieldFrom(content, name string) string { return infoFieldIn(strings.NewReader(content), name) }

func infoFieldIn(r io.Reader, name string) string {
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// tree is the total size and number of the regular files under dir; what cannot be read
// counts as nothing (a listing estimates, the copy checks).
func tree(dir string) (size int64, files int) {
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
				files++
			}
		}
		return nil
	})
	return size, files
}
