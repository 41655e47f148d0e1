package take

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/engine/mariadb"
	"github.com/firedrill/firedrill/restore/engine/mongodb"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	enginered "github.com/firedrill/firedrill/restore/engine/redis"
)

// opened is a connected freezer with the facts it read and the copy rule for the local driver.
type opened struct {
	freezer engine.Freezer
	info    map[string]string
	rule    engine.CopyRule
}

// open connects to the target's database and builds its freezer. The connection is the
// freezer's: closing the freezer closes it.
func open(ctx context.Context, o *Options) (*opened, error) {
	if o.CSI == nil && o.DataDir != "" {
		// Once, up front: the copy walks the data directory from its real path (a walk does
		// not enter a symlinked root), and every comparison below uses it.
		if real, err := filepath.EvalSymlinks(o.DataDir); err == nil {
			o.DataDir = real
		}
		if err := repositoryOutside(o, "the data directory", o.DataDir); err != nil {
			return nil, err
		}
	}
	if o.Freezer != nil {
		return &opened{freezer: o.Freezer, info: o.Attributes, rule: o.Rule}, nil
	}
	switch o.Engine {
	case "postgres":
		return openPostgres(ctx, o)
	case "mariadb", "mysql":
		return openMariaDB(ctx, o)
	case "redis":
		return openRedis(ctx, o)
	case "mongodb":
		return openMongoDB(ctx, o)
	}
	return nil, fmt.Errorf("%w: engine %q", ErrUnsupported, o.Engine)
}

func malformed(o *Options) error {
	// Drivers' parse errors may quote the DSN; say only that it is malformed (configuration
	// validation says why, without the DSN).
	return fmt.Errorf("%w: the connection DSN of target %s is malformed", ErrMalformedDSN, o.Target)
}

// repositoryOutside refuses a local repository inside dir (a directory the snapshot copies):
// the copy would copy the repository into itself.
func repositoryOutside(o *Options, what, dir string) error {
	if o.Repository == nil || dir == "" {
		return nil
	}
	repo, d := realPath(o.Repository.Dir), realPath(dir)
	if repo == d || strings.HasPrefix(repo, strings.TrimSuffix(d, "/")+"/") {
		return fmt.Errorf("%w: target %s's snapshot repository %s is inside %s %s, which the snapshot copies: it would copy the repository into itself; move snapshot.local.repository outside the data directory, its tablespaces and its WAL directory", ErrMismatch, o.Target, o.Repository.Dir, what, dir)
	}
	return nil
}

// realPath cleans p and resolves the symlinks of its longest existing prefix (a repository
// may not exist yet).
func realPath(p string) string {
	p = filepath.Clean(p)
	var rest []string
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}

func openPostgres(ctx context.Context, o *Options) (*opened, error) {
	cfg, err := pgx.ParseConfig(o.DSN)
	if err != nil {
		return nil, malformed(o)
	}
	cfg.RuntimeParams["application_name"] = "firedrill-snapshot"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if pe := postgres.AuthFailure(err); pe != nil {
			// The server answered: it is running and reachable, and refused these credentials.
			return nil, fmt.Errorf("%w for user %q on target %s: %s (SQLSTATE %s); check the user and password of connection.dsn", ErrAuth, cfg.User, o.Target, pe.Message, pe.Code)
		}
		return nil, fmt.Errorf("%w: while connecting to target %s (is the server running, and does connection.dsn reach it?): %w", ErrUnreachable, o.Target, err)
	}
	if o.Mode == "crash-consistent" {
		f := postgres.NewCheckpoint(conn, o.Now)
		info, err := f.ServerInfo(ctx)
		if err != nil {
			_ = f.Close(ctx)
			return nil, err
		}
		return &opened{freezer: f, info: info}, nil
	}
	backup := postgres.NewOnlineBackup(conn, postgres.OnlineBackupOptions{
		Label: "firedrill " + o.Target, Fast: o.Fast, Now: o.Now,
		// A volume snapshot holds the WAL only up to the cut; the rest, to the stop LSN, must
		// be archived before the snapshot is usable. The local driver copies it itself.
		WaitForArchive: o.CSI != nil,
	})
	info, err := backup.ServerInfo(ctx)
	if err != nil {
		_ = backup.Close(ctx)
		return nil, err
	}
	if o.CSI == nil {
		if dd := info["dataDirectory"]; dd != "" && !sameDir(dd, o.DataDir) {
			_ = backup.Close(ctx)
			return nil, fmt.Errorf("%w: target %s's server runs on data directory %s, but snapshot.local.dataDir is %s", ErrMismatch, o.Target, dd, o.DataDir)
		}
		if err := copiedPlaces(ctx, o, backup); err != nil {
			_ = backup.Close(ctx)
			return nil, err
		}
	}
	delete(info, "dataDirectory")
	return &opened{freezer: backup, info: info, rule: postgres.CopyRule}, nil
}

// copiedPlaces refuses a repository inside a directory the snapshot of a PostgreSQL data
// directory copies besides the data directory itself: a tablespace, or the WAL directory
// when pg_wal is a link to another disk.
func copiedPlaces(ctx context.Context, o *Options, b *postgres.OnlineBackup) error {
	tablespaces, err := b.Tablespaces(ctx)
	if err != nil {
		return err
	}
	for _, ts := range tablespaces {
		if err := repositoryOutside(o, "tablespace "+ts.Name, ts.Location); err != nil {
			return err
		}
	}
	if wal, err := filepath.EvalSymlinks(filepath.Join(o.DataDir, "pg_wal")); err == nil {
		return repositoryOutside(o, "the WAL directory", wal)
	}
	return nil
}

func openMariaDB(ctx context.Context, o *Options) (*opened, error) {
	cfg, err := mysql.ParseDSN(o.DSN)
	if err != nil {
		return nil, malformed(o)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, malformed(o)
	}
	db := sql.OpenDB(connector)
	// One connection: the lock lives on it, and nothing else may borrow it.
	db.SetMaxOpenConns(1)
	mode := mariadb.GlobalReadLock
	if o.Mode == "crash-consistent" {
		mode = mariadb.CrashConsistent
	}
	lockWait := 10 * time.Second
	if o.MaxFreeze > 0 {
		lockWait = min(lockWait, max(o.MaxFreeze/2, time.Second))
	}
	f := mariadb.New(db, mariadb.Options{Mode: mode, LockWait: lockWait, Now: o.Now})
	info, err := f.ServerInfo(ctx)
	if err != nil {
		_ = f.Close(ctx)
		return nil, fmt.Errorf("%w: while connecting to target %s: %w", ErrUnreachable, o.Target, err)
	}
	return &opened{freezer: f, info: info}, nil
}

// closing closes a client after its freezer.
type closing struct {
	engine.Freezer
	close func() error
}

func (c *closing) Close(ctx context.Context) error {
	err := c.Freezer.Close(ctx)
	if c.close != nil {
		err = errors.Join(err, c.close())
		c.close = nil
	}
	return err
}

func openRedis(ctx context.Context, o *Options) (*opened, error) {
	opt, err := goredis.ParseURL(o.DSN)
	if err != nil {
		return nil, malformed(o)
	}
	client := goredis.NewClient(opt)
	maxWait := o.MaxFreeze
	if maxWait <= 0 {
		maxWait = time.Minute
	}
	rf := enginered.New(client, enginered.Options{MaxWait: maxWait, Now: o.Now})
	f := &closing{Freezer: rf, close: client.Close}
	info, err := rf.ServerInfo(ctx)
	if err != nil {
		_ = f.Close(ctx)
		return nil, fmt.Errorf("%w: while connecting to target %s: %w", ErrUnreachable, o.Target, err)
	}
	if o.CSI == nil {
		if dir := info[enginered.AttrDir]; dir != "" && o.DataDir != "" && !sameDir(dir, o.DataDir) {
			_ = f.Close(ctx)
			return nil, fmt.Errorf("%w: target %s's server writes its RDB to %s, but snapshot.local.dataDir is %s", ErrMismatch, o.Target, dir, o.DataDir)
		}
	}
	rdb := info[enginered.AttrRDBFile]
	if rdb == "" {
		rdb = "dump.rdb"
	}
	// Only the RDB this save wrote: AOF files and temp-*.rdb of a running save are not it.
	rule := func(rel string, isDir bool) engine.CopyAction {
		if isDir || path.Dir(rel) != "." || rel != rdb {
			return engine.Skip
		}
		return engine.Copy
	}
	return &opened{freezer: f, info: info, rule: rule}, nil
}

func openMongoDB(ctx context.Context, o *Options) (*opened, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(o.DSN).SetAppName("firedrill-snapshot"))
	if err != nil {
		return nil, malformed(o)
	}
	mf := mongodb.New(client.Database("admin"), mongodb.Options{CrashConsistent: o.Mode == "crash-consistent", Now: o.Now})
	f := &closing{Freezer: mf, close: func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return client.Disconnect(cctx)
	}}
	info, err := mf.ServerInfo(ctx)
	if err != nil {
		_ = f.Close(ctx)
		return nil, fmt.Errorf("%w: while connecting to target %s: %w", ErrUnreachable, o.Target, err)
	}
	// Under fsyncLock every file is quiescent; the lock file and diagnostics are not data.
	rule := func(rel string, isDir bool) engine.CopyAction {
		switch rel {
		case "mongod.lock":
			return engine.Skip
		case "diagnostic.data":
			return engine.SkipContents
		}
		return engine.Copy
	}
	return &opened{freezer: f, info: info, rule: rule}, nil
}
