package dump

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// S3API is the part of an S3 client a dump source uses: listing, reading an object's
// checksums, downloading it.
type S3API interface {
	s3.ListObjectsV2APIClient
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// S3Location is where the dumps of an S3 source are: the objects under Prefix in Bucket.
type S3Location struct {
	Bucket string
	// Prefix is the key prefix; a dump's id is its key relative to it.
	Prefix string
	// Where names the location for messages (s3://bucket/prefix at the endpoint), without
	// credentials.
	Where string
	// Client returns the location's client, built once (credentials come by reference).
	Client func(ctx context.Context) (S3API, error)
}

// AttrKey is the object key of a dump downloaded from S3.
const AttrKey = "key"

// platform wraps an S3 failure to reach or read the bucket: the drill could not check (exit 3).
func (l *S3Location) platform(err error, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %w", drill.ErrPlatform, fmt.Sprintf(format, a...), err)
}

func (l *S3Location) client(ctx context.Context) (S3API, error) {
	c, err := l.Client(ctx)
	if err != nil {
		return nil, l.platform(err, "while connecting to %s", l.Where)
	}
	return c, nil
}

// listS3 returns the objects under the prefix whose base name matches, newest first.
func (s *Source) listS3(ctx context.Context) ([]snapshot.Metadata, error) {
	l := s.S3
	api, err := l.client(ctx)
	if err != nil {
		return nil, err
	}
	var out []snapshot.Metadata
	p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), Prefix: aws.String(l.Prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, l.platform(err, "while listing %s", l.Where)
		}
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), l.Prefix)
			if rel == "" || strings.HasSuffix(rel, "/") || !s.matches(path.Base(rel)) {
				continue
			}
			var at time.Time
			if o.LastModified != nil {
				at = o.LastModified.UTC()
			}
			out = append(out, snapshot.Metadata{ID: rel, Target: s.Target, Engine: "postgres", Mode: "logical", Driver: Driver,
				TakenAt: at, FinishedAt: at, SizeBytes: aws.ToInt64(o.Size), Status: "complete",
				Attributes: map[string]string{AttrKey: aws.ToString(o.Key), "location": l.Where, postgres.AttrSuperuser: superuser}})
		}
	}
	snapshot.SortNewestFirst(out)
	return out, nil
}

// getS3 returns the dump whose key relative to the prefix is id.
func (s *Source) getS3(ctx context.Context, id string) (*snapshot.Metadata, error) {
	all, err := s.listS3(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].ID == id {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("%w: no dump %q under %s", snapshot.ErrNotFound, id, s.S3.Where)
}

// claim is a SHA-256 the store or the writer states for an object, and who states it.
type claim struct{ sum, from string }

// download streams the object into dst, hashing it as it goes, and returns the finding of
// comparing its SHA-256 with every claim the store makes for it: the object's own
// full-object checksum (x-amz-checksum-sha256, read with ChecksumMode enabled), the writer's
// sha256 metadata, a "<key>.sha256" sidecar object. A mismatch is a failed finding; a bucket
// that cannot be read is ErrPlatform.
func (s *Source) download(ctx context.Context, id, dst string, status func(string)) (checks.Finding, error) {
	l := s.S3
	api, err := l.client(ctx)
	if err != nil {
		return checks.Finding{}, err
	}
	key := l.Prefix + id
	head, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(l.Bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return checks.Finding{}, l.platform(err, "while reading object %s of %s", id, l.Where)
	}
	var claims []claim
	if v := aws.ToString(head.ChecksumSHA256); v != "" && !strings.Contains(v, "-") && head.ChecksumType != types.ChecksumTypeComposite {
		if h := hexSHA256(v); h != "" {
			claims = append(claims, claim{h, "the object's x-amz-checksum-sha256"})
		}
	}
	for k, v := range head.Metadata {
		if strings.EqualFold(k, "sha256") {
			if h := hexSHA256(v); h != "" {
				claims = append(claims, claim{h, "the object's sha256 metadata"})
			}
		}
	}
	if h, err := s.sidecarS3(ctx, api, key); err != nil {
		return checks.Finding{}, err
	} else if h != "" {
		claims = append(claims, claim{h, "the sidecar object " + path.Base(key) + sidecarSuffix})
	}

	status(fmt.Sprintf("downloading %s from %s (%d MB)", id, l.Where, aws.ToInt64(head.ContentLength)>>20))
	obj, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(l.Bucket), Key: aws.String(key)})
	if err != nil {
		return checks.Finding{}, l.platform(err, "while downloading object %s of %s", id, l.Where)
	}
	defer obj.Body.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return checks.Finding{}, fmt.Errorf("while downloading %s into %s: %w", id, dst, err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(writerOnly{f}, h), ctxReader{ctx, obj.Body}, make([]byte, 1<<20))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return checks.Finding{}, fmt.Errorf("while downloading %s: %w", id, ctx.Err())
	case errors.Is(err, errWrite):
		return checks.Finding{}, fmt.Errorf("while downloading %s into %s: %w", id, dst, err)
	default:
		return checks.Finding{}, l.platform(err, "while downloading object %s of %s", id, l.Where)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	ev := checks.Evidence{"algorithm": "sha256", "sha256": sum, "bytes": n, "object": id, "location": l.Where}
	if want := aws.ToInt64(head.ContentLength); head.ContentLength != nil && n != want {
		ev["expectedBytes"] = want
		return checks.Failf(drill.SnapshotIntegrityName, ev, "downloaded %d bytes of %s, but the store says it has %d", n, id, want), nil
	}
	if len(claims) == 0 {
		return checks.Passf(drill.SnapshotIntegrityName, ev, "downloaded the whole dump (the store has no SHA-256 for it: no x-amz-checksum-sha256, sha256 metadata or %s sidecar)", sidecarSuffix), nil
	}
	var from []string
	for _, c := range claims {
		from = append(from, c.from)
		if c.sum != sum {
			ev["expected"], ev["expectedFrom"] = c.sum, c.from
			return checks.Failf(drill.SnapshotIntegrityName, ev, "the downloaded dump's SHA-256 is %s, but %s says %s: the object changed after it was written, or in transit", sum, c.from, c.sum), nil
		}
	}
	ev["comparedWith"] = from
	return checks.Passf(drill.SnapshotIntegrityName, ev, "the downloaded dump's SHA-256 matches %s", strings.Join(from, " and ")), nil
}

// sidecarS3 reads the "<key>.sha256" object beside key ("" when there is none).
func (s *Source) sidecarS3(ctx context.Context, api S3API, key string) (string, error) {
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.S3.Bucket), Key: aws.String(key + sidecarSuffix)})
	if err != nil {
		var nsk *types.NoSuchKey
		var apiErr smithy.APIError
		if errors.As(err, &nsk) || (errors.As(err, &apiErr) && (apiErr.ErrorCode() == "NoSuchKey" || apiErr.ErrorCode() == "NotFound")) {
			return "", nil
		}
		return "", s.S3.platform(err, "while reading the checksum sidecar of %s", path.Base(key))
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 4096))
	if err != nil {
		return "", s.S3.platform(err, "while reading the checksum sidecar of %s", path.Base(key))
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 || hexSHA256(fields[0]) == "" {
		return "", fmt.Errorf("%w: the checksum sidecar of %s holds no SHA-256", ErrCorrupt, path.Base(key))
	}
	return hexSHA256(fields[0]), nil
}

// hexSHA256 turns a SHA-256 in hex or base64 into lowercase hex ("" if it is neither).
func hexSHA256(v string) string {
	v = strings.TrimSpace(v)
	if b, err := hex.DecodeString(v); err == nil && len(b) == 32 {
		return strings.ToLower(v)
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == 32 {
		return hex.EncodeToString(b)
	}
	return ""
}

// materializeS3 downloads the dump into scratch, verifies it, restores it as a local file
// and removes the download.
func (s *Source) materializeS3(ctx context.Context, req drill.MaterializeRequest) (*drill.Copy, error) {
	dir := filepath.Join(req.ScratchDir, "download")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating the download directory %s: %w", dir, err)
	}
	defer os.RemoveAll(dir) // the download never outlives the restore
	dst := filepath.Join(dir, path.Base(req.Snapshot.ID))
	integrity, err := s.download(ctx, req.Snapshot.ID, dst, req.Status)
	if errors.Is(err, ErrCorrupt) {
		integrity, err = checks.Failf(drill.SnapshotIntegrityName, checks.Evidence{"object": req.Snapshot.ID}, "%v", err), nil
	}
	if err != nil {
		return nil, err
	}
	return s.restoreFile(ctx, req, dst, []checks.Finding{integrity})
}
