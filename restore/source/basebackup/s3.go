package basebackup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/walarchive"
)

// S3Location is an S3 prefix holding the base backups (one per "directory" under it, or the
// prefix is one) or the WAL archive.
type S3Location struct {
	Bucket string
	// Prefix is the key prefix, ending in "/" unless empty.
	Prefix string
	// Where names the prefix for messages (s3://bucket/prefix at the endpoint), without
	// credentials.
	Where string
	// Client returns the location's client, built once (credentials come by reference and
	// stay in firedrill: the throwaway server only reads files firedrill staged).
	Client func(ctx context.Context) (walarchive.S3API, error)
}

// client returns the location's client; its failures to reach or read the bucket are
// drill.ErrPlatform (the drill could not check: exit 3).
func (l *S3Location) client(ctx context.Context) (walarchive.S3API, error) {
	api, err := l.Client(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: while connecting to %s: %w", drill.ErrPlatform, l.Where, err)
	}
	return platformAPI{api, l.Where}, nil
}

// platformAPI marks every failed request as drill.ErrPlatform.
type platformAPI struct {
	api   walarchive.S3API
	where string
}

func (p platformAPI) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	out, err := p.api.ListObjectsV2(ctx, in, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: while listing %s: %w", drill.ErrPlatform, p.where, err)
	}
	return out, nil
}

func (p platformAPI) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := p.api.GetObject(ctx, in, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: while reading object %s of %s: %w", drill.ErrPlatform, aws.ToString(in.Key), p.where, err)
	}
	return out, nil
}

// object is one object of a base backup under the prefix.
type object struct {
	rel     string // path within the backup
	key     string
	size    int64
	modTime time.Time
}

// listS3Objects groups the objects under the prefix by backup: "." when the prefix holds one
// backup itself, else the first path element.
func (l *S3Location) listS3Objects(ctx context.Context, api walarchive.S3API) (map[string][]object, error) {
	groups := map[string][]object{}
	p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), Prefix: aws.String(l.Prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), l.Prefix)
			if rel == "" || strings.HasSuffix(rel, "/") {
				continue
			}
			ob := object{key: aws.ToString(o.Key), size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				ob.modTime = o.LastModified.UTC()
			}
			id, rest, ok := strings.Cut(rel, "/")
			if !ok {
				id, rest = ".", rel
			}
			ob.rel = rest
			groups[id] = append(groups[id], ob)
		}
	}
	if top, ok := groups["."]; ok && isBackup(top) {
		return map[string][]object{".": top}, nil
	}
	delete(groups, ".")
	return groups, nil
}

func isBackup(objs []object) bool {
	return slices.ContainsFunc(objs, func(o object) bool {
		return o.rel == postgres.BackupLabelFile || o.rel == "base.tar" || o.rel == "base.tar.gz"
	})
}

// listS3 returns the base backups under the prefix, newest first, reading each one's label
// (from the start of base.tar, which pg_basebackup writes first) and manifest.
func (s *Source) listS3(ctx context.Context) ([]snapshot.Metadata, error) {
	api, err := s.S3.client(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := s.S3.listS3Objects(ctx, api)
	if err != nil {
		return nil, err
	}
	arch := s.historyArchive(ctx)
	var out []snapshot.Metadata
	for id, objs := range groups {
		b, err := s.inspectS3(ctx, api, id, objs)
		if errors.Is(err, drill.ErrPlatform) {
			return nil, err
		}
		if err != nil {
			continue // not a base backup: nothing to restore
		}
		out = append(out, s.describe(id, b, arch))
	}
	snapshot.SortNewestFirst(out)
	return slices.DeleteFunc(out, func(m snapshot.Metadata) bool { return !Reaches(s.Recovery, m) }), nil
}

// historyArchive lists an S3 archive for the backups' .backup files (nil: a directory
// archive, read in place, or an archive that cannot be listed, whose error the drill reports).
func (s *Source) historyArchive(ctx context.Context) *walarchive.Listing {
	if s.ArchiveS3 == nil {
		return nil
	}
	l, err := s.ListArchive(ctx, 0)
	if err != nil {
		return nil
	}
	return l
}

// inspectS3 reads a base backup's label and manifest from the bucket without downloading it.
func (s *Source) inspectS3(ctx context.Context, api walarchive.S3API, id string, objs []object) (*backup, error) {
	b := &backup{path: id, remote: true}
	byRel := map[string]object{}
	for _, o := range objs {
		byRel[o.rel] = o
		b.size += o.size
		if o.modTime.After(b.modTime) {
			b.modTime = o.modTime
		}
	}
	var err error
	switch {
	case has(byRel, postgres.BackupLabelFile):
		b.format = FormatPlain
		b.labelBytes, err = s.readObject(ctx, api, byRel[postgres.BackupLabelFile].key, 1<<20)
	case has(byRel, "base.tar"), has(byRel, "base.tar.gz"):
		b.format = FormatTar
		if has(byRel, "base.tar.gz") {
			b.compression = ".gz"
		}
		b.labelBytes, err = s.labelFromTar(ctx, api, byRel["base.tar"+b.compression].key)
	default:
		return nil, fmt.Errorf("%s of %s is not a base backup: no backup_label, base.tar or base.tar.gz", id, s.S3.Where)
	}
	if err != nil {
		return nil, err
	}
	if b.label, err = walarchive.ParseBackupLabel(b.labelBytes); err != nil {
		return nil, fmt.Errorf("while reading the backup label of %s in %s: %w", id, s.S3.Where, err)
	}
	if m, ok := byRel[manifestFile]; ok {
		b.modTime = m.modTime
		if data, err := s.readObject(ctx, api, m.key, 256<<20); err == nil {
			if stop, err := parseManifestStop(data); err == nil {
				b.stopLSN = stop
			}
		}
	}
	return b, nil
}

func has(m map[string]object, k string) bool { _, ok := m[k]; return ok }

func (s *Source) readObject(ctx context.Context, api walarchive.S3API, key string, limit int64) ([]byte, error) {
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.S3.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("%w: while reading object %s of %s: %w", drill.ErrPlatform, key, s.S3.Where, err)
	}
	return b, nil
}

// labelFromTar streams base.tar[.gz] until its backup_label, which comes first: only the
// first entries are read.
func (s *Source) labelFromTar(ctx context.Context, api walarchive.S3API, key string) ([]byte, error) {
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.S3.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	var r io.Reader = out.Body
	if strings.HasSuffix(key, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("while reading gzip object %s: %w", key, err)
		}
		r = zr
	}
	tr := tar.NewReader(r)
	for range 64 {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("while looking for %s in %s: %w", postgres.BackupLabelFile, key, err)
		}
		if filepath.Clean(h.Name) == postgres.BackupLabelFile {
			return io.ReadAll(io.LimitReader(tr, 1<<20))
		}
	}
	return nil, fmt.Errorf("%s has no %s among its first entries", key, postgres.BackupLabelFile)
}

// backupObjects lists the prefix and returns the objects of base backup id.
func (s *Source) backupObjects(ctx context.Context, id string) (walarchive.S3API, []object, error) {
	api, err := s.S3.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	groups, err := s.S3.listS3Objects(ctx, api)
	if err != nil {
		return nil, nil, err
	}
	objs, ok := groups[id]
	if !ok {
		return nil, nil, fmt.Errorf("%w: no base backup %q under %s", snapshot.ErrNotFound, id, s.S3.Where)
	}
	return api, objs, nil
}

// getS3 returns the base backup called id under the prefix.
func (s *Source) getS3(ctx context.Context, id string) (*snapshot.Metadata, error) {
	api, objs, err := s.backupObjects(ctx, id)
	if err != nil {
		return nil, err
	}
	b, err := s.inspectS3(ctx, api, id, objs)
	if errors.Is(err, drill.ErrPlatform) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", snapshot.ErrNotFound, err)
	}
	m := s.describe(id, b, s.historyArchive(ctx))
	return &m, nil
}

// downloadS3 streams every object of base backup id into dir (1 MiB at a time) and inspects
// the copy like a backup on disk.
func (s *Source) downloadS3(ctx context.Context, id, dir string, status func(string)) (*backup, error) {
	api, objs, err := s.backupObjects(ctx, id)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, o := range objs {
		total += o.size
	}
	status(fmt.Sprintf("downloading base backup %s from %s (%d objects, %d MB)", id, s.S3.Where, len(objs), total>>20))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating the download directory %s: %w", dir, err)
	}
	for _, o := range objs {
		rel := path.Clean(o.rel)
		if path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("object %s of %s leaves the download directory", o.key, s.S3.Where)
		}
		out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.S3.Bucket), Key: aws.String(o.key)})
		if err != nil {
			return nil, err
		}
		err = writeFile(ctx, filepath.Join(dir, filepath.FromSlash(rel)), out.Body, 0o600)
		out.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: while downloading object %s of %s: %w", drill.ErrPlatform, o.key, s.S3.Where, err)
		}
	}
	return s.inspect(dir)
}
