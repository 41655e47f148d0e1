package audit

import (
	"context"
	"fmt"
	"sync"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/source/basebackup"
	"github.com/firedrill/firedrill/restore/source/walarchive"
)

// BaseBackupSource is the source of a basebackup target, for drills and for the auditor: its
// base backups and WAL archive each in a directory or under an S3 prefix, whose client is
// built once, on first use, from the location's settings (credentials by reference).
func BaseBackupSource(t *policy.Target) *basebackup.Source {
	s := t.Restore.Source
	src := &basebackup.Source{Target: t.Name, Dir: s.Dir, Archive: s.Archive, Recovery: s.RecoveryTarget(), BinDir: t.Restore.Local.BinDir}
	if l, prefix := s.BaseBackupS3(); l != nil {
		src.S3 = s3Location(l, prefix)
	}
	if l, prefix := s.ArchiveS3(); l != nil {
		src.ArchiveS3 = s3Location(l, prefix)
	}
	return src
}

func s3Location(l *policy.Location, prefix string) *basebackup.S3Location {
	var once sync.Once
	var api walarchive.S3API
	var err error
	return &basebackup.S3Location{Bucket: l.S3.Bucket, Prefix: prefix, Where: S3Where(l, prefix),
		Client: func(ctx context.Context) (walarchive.S3API, error) {
			once.Do(func() { api, err = NewS3Client(ctx, l) })
			return api, err
		}}
}

// S3Where names an S3 prefix and its endpoint, never with credentials.
func S3Where(l *policy.Location, prefix string) string {
	endpoint := "AWS " + l.S3.Region
	if l.S3.Endpoint != "" {
		endpoint = policy.Redacted(l.S3.Endpoint)
	}
	return fmt.Sprintf("s3://%s/%s at %s", l.S3.Bucket, prefix, endpoint)
}
