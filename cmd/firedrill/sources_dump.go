package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/firedrill/firedrill/audit"
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/source/dump"
)

// dumpSource is the source of a target drilled from pg_dump files: a directory, or an S3
// prefix whose client is built once, on first use, from the location's settings.
func dumpSource(t *policy.Target) *dump.Source {
	s := t.Restore.Source
	src := &dump.Source{Target: t.Name, Dir: s.Dir, Pattern: s.Pattern, Jobs: s.Jobs, BinDir: t.Restore.Local.BinDir}
	if l, prefix := s.DumpS3(); l != nil {
		var once sync.Once
		var api dump.S3API
		var err error
		src.S3 = &dump.S3Location{Bucket: l.S3.Bucket, Prefix: prefix, Where: s3Where(l, prefix),
			Client: func(ctx context.Context) (dump.S3API, error) {
				once.Do(func() { api, err = audit.NewS3Client(ctx, l) })
				return api, err
			}}
	}
	return src
}

// dumpWhere names where a dump target's files are, for messages.
func dumpWhere(t *policy.Target) string {
	if l, prefix := t.Restore.Source.DumpS3(); l != nil {
		return s3Where(l, prefix)
	}
	return t.Restore.Source.Dir
}

// s3Where names an S3 prefix and its endpoint, never with credentials.
func s3Where(l *policy.Location, prefix string) string {
	endpoint := "AWS " + l.S3.Region
	if l.S3.Endpoint != "" {
		endpoint = policy.Redacted(l.S3.Endpoint)
	}
	return fmt.Sprintf("s3://%s/%s at %s", l.S3.Bucket, prefix, endpoint)
}

// drillable leaves out the targets firedrill only audits (no snapshot section, no
// restore.source: nothing to restore); naming one with --target is a usage error.
func drillable(targets []policy.Target, named bool) ([]policy.Target, error) {
	var out []policy.Target
	var auditOnly []string
	for _, t := range targets {
		if t.AuditOnly() {
			auditOnly = append(auditOnly, t.Name)
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 || (named && len(auditOnly) > 0) {
		return nil, usageError{fmt.Errorf("target %s is only audited: it has no snapshot section and no restore.source to drill from (add restore.source, e.g. kind: dump)",
			strings.Join(auditOnly, ", "))}
	}
	return out, nil
}
