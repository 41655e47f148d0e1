package redis

import (
	"context"
	"fmt"
	"path"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/firedrill/firedrill/restore/engine"
)

// Spec is Redis's registry entry.
func Spec() engine.Spec {
	return engine.Spec{
		Name:     "redis",
		KeyValue: true,
		Modes:    []string{"online"},
		ModeHelp: "redis has only mode online: BGSAVE",
		Drivers:  map[string][]string{"local": {"online"}, "csi": {"online"}},
		ParseDSN: func(dsn string) error { _, err := goredis.ParseURL(dsn); return err },
		Open:     open,
	}
}

func open(ctx context.Context, o engine.OpenRequest) (*engine.Opened, error) {
	opt, err := goredis.ParseURL(o.DSN)
	if err != nil {
		return nil, engine.Malformed(o.Target)
	}
	client := goredis.NewClient(opt)
	maxWait := o.MaxFreeze
	if maxWait <= 0 {
		maxWait = time.Minute
	}
	rf := New(client, Options{MaxWait: maxWait, Now: o.Now})
	f := engine.WithClose(rf, client.Close)
	info, err := rf.ServerInfo(ctx)
	if err != nil {
		return nil, engine.CloseAfter(ctx, f, fmt.Errorf("%w: while connecting to target %s: %w", engine.ErrUnreachable, o.Target, err))
	}
	if !o.Volumes {
		if dir := info[AttrDir]; dir != "" && o.DataDir != "" && !engine.SameDir(dir, o.DataDir) {
			return nil, engine.CloseAfter(ctx, f, fmt.Errorf("%w: target %s's server writes its RDB to %s, but snapshot.local.dataDir is %s", engine.ErrMismatch, o.Target, dir, o.DataDir))
		}
	}
	rdb := info[AttrRDBFile]
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
	return &engine.Opened{Freezer: f, Info: info, Rule: rule}, nil
}
