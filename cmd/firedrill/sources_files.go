package main

import (
	"context"
	"sync"

	"github.com/firedrill/firedrill/audit"
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/source/files"
)

// fileSource is the source of a target drilled from another tool's backups of an engine other
// than PostgreSQL (restore.source.kind rdb, mariadb-backup, mariadb-dump or mongodump): a
// directory, or an S3 prefix whose client is built once, on first use, from the location's
// settings.
func fileSource(t *policy.Target) *files.Source {
	s := t.Restore.Source
	src := &files.Source{Target: t.Name, Engine: t.Engine, Kind: s.Kind, Dir: s.Dir, Pattern: s.Pattern}
	if l, prefix := s.FilesS3(); l != nil {
		var once sync.Once
		var api files.S3API
		var err error
		src.S3 = &files.S3Location{Bucket: l.S3.Bucket, Prefix: prefix, Where: s3Where(l, prefix),
			Client: func(ctx context.Context) (files.S3API, error) {
				once.Do(func() { api, err = audit.NewS3Client(ctx, l) })
				return api, err
			}}
	}
	return src
}
