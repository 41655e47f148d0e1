package s3objects

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
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/source/internal/entries"
)

// API is the part of an S3 client a source uses: listing, reading an object's checksums,
// downloading it.
type API interface {
	s3.ListObjectsV2APIClient
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Location is where the backups of an S3 source are: the objects under Prefix in Bucket.
type Location struct {
	Bucket string
	// Prefix is the key prefix; a backup's id is its key relative to it.
	Prefix string
	// Where names the location for messages (s3://bucket/prefix at the endpoint), without
	// credentials.
	Where string
	// Client returns the location's client, built once (credentials come by reference).
	Client func(ctx context.Context) (API, error)
}

// Platform wraps an S3 failure to reach or read the bucket: the drill could not check (exit 3).
func (l *Location) Platform(err error, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %w", drill.ErrPlatform, fmt.Sprintf(format, a...), err)
}

// Connect returns the location's client.
func (l *Location) Connect(ctx context.Context) (API, error) {
	c, err := l.Client(ctx)
	if err != nil {
		return nil, l.Platform(err, "while connecting to %s", l.Where)
	}
	return c, nil
}

// Object is one object under the prefix.
type Object struct {
	Key string
	// Rel is the key relative to the prefix.
	Rel      string
	Size     int64
	Modified time.Time
}

// List returns every object under the prefix (not the "directory" markers ending in "/"),
// in the store's order.
func (l *Location) List(ctx context.Context, api API) ([]Object, error) {
	var out []Object
	p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), Prefix: aws.String(l.Prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, l.Platform(err, "while listing %s", l.Where)
		}
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), l.Prefix)
			if rel == "" || strings.HasSuffix(rel, "/") {
				continue
			}
			ob := Object{Key: aws.ToString(o.Key), Rel: rel, Size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				ob.Modified = o.LastModified.UTC()
			}
			out = append(out, ob)
		}
	}
	return out, nil
}

// Claim is a SHA-256 the store or the writer states for an object, and who states it.
type Claim struct{ Sum, From string }

// Download is what downloading one object proved.
type Download struct {
	// Rel is the object's key relative to the prefix.
	Rel    string
	SHA256 string
	Bytes  int64
	// StoreBytes is the object's length as the store states it (-1: not stated).
	StoreBytes int64
	// Claims are the SHA-256s the store and the writer state for it.
	Claims []Claim
}

// Options says which claims Fetch looks for besides the object's own.
type Options struct {
	// Sidecar also reads the "<key>.sha256" object beside the object.
	Sidecar bool
	// Quiet leaves out the status line (many small objects of one backup).
	Quiet bool
}

// BadSidecarError is a sidecar object that holds no SHA-256: the writer's claim is unreadable.
type BadSidecarError struct{ Name string }

func (e BadSidecarError) Error() string {
	return fmt.Sprintf("the checksum sidecar of %s holds no SHA-256", e.Name)
}

// Fetch streams the object at rel (relative to the prefix) into dst, hashing it as it goes,
// and gathers every claim the store makes for it: the object's own full-object checksum
// (x-amz-checksum-sha256, read with ChecksumMode enabled), the writer's sha256 metadata and,
// with opts.Sidecar, a "<key>.sha256" sidecar object. Download.Finding compares them. A
// bucket that cannot be read is ErrPlatform; a sidecar that holds no SHA-256 is
// BadSidecarError.
func (l *Location) Fetch(ctx context.Context, api API, rel, dst string, opts Options, status func(string)) (Download, error) {
	key := l.Prefix + rel
	d := Download{Rel: rel, StoreBytes: -1}
	head, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(l.Bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return d, l.Platform(err, "while reading object %s of %s", rel, l.Where)
	}
	if v := aws.ToString(head.ChecksumSHA256); v != "" && !strings.Contains(v, "-") && head.ChecksumType != types.ChecksumTypeComposite {
		if h := HexSHA256(v); h != "" {
			d.Claims = append(d.Claims, Claim{h, "the object's x-amz-checksum-sha256"})
		}
	}
	for k, v := range head.Metadata {
		if strings.EqualFold(k, "sha256") {
			if h := HexSHA256(v); h != "" {
				d.Claims = append(d.Claims, Claim{h, "the object's sha256 metadata"})
			}
		}
	}
	if opts.Sidecar {
		if h, err := l.sidecar(ctx, api, key); err != nil {
			return d, err
		} else if h != "" {
			d.Claims = append(d.Claims, Claim{h, "the sidecar object " + path.Base(key) + entries.SidecarSuffix})
		}
	}
	if head.ContentLength != nil {
		d.StoreBytes = *head.ContentLength
	}
	if !opts.Quiet {
		status(fmt.Sprintf("downloading %s from %s (%d MB)", rel, l.Where, aws.ToInt64(head.ContentLength)>>20))
	}
	obj, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(l.Bucket), Key: aws.String(key)})
	if err != nil {
		return d, l.Platform(err, "while downloading object %s of %s", rel, l.Where)
	}
	defer obj.Body.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return d, fmt.Errorf("while downloading %s into %s: %w", rel, dst, err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(writerOnly{f}, h), ctxReader{ctx, obj.Body}, make([]byte, 1<<20))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %w", errWrite, cerr)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return d, fmt.Errorf("while downloading %s: %w", rel, ctx.Err())
	case errors.Is(err, errWrite):
		return d, fmt.Errorf("while downloading %s into %s: %w", rel, dst, err)
	default:
		return d, l.Platform(err, "while downloading object %s of %s", rel, l.Where)
	}
	d.SHA256, d.Bytes = hex.EncodeToString(h.Sum(nil)), n
	return d, nil
}

// Finding compares the download with the store's claims; one names what the object is in
// messages ("dump", "backup"). A short download or a SHA-256 a claim disagrees with is a
// failed finding: the object changed after it was written, or in transit.
func (d Download) Finding(l *Location, one string) checks.Finding {
	ev := checks.Evidence{"algorithm": "sha256", "sha256": d.SHA256, "bytes": d.Bytes, "object": d.Rel, "location": l.Where}
	if d.StoreBytes >= 0 && d.Bytes != d.StoreBytes {
		ev["expectedBytes"] = d.StoreBytes
		return checks.Failf(drill.SnapshotIntegrityName, ev, "downloaded %d bytes of %s, but the store says it has %d", d.Bytes, d.Rel, d.StoreBytes)
	}
	if len(d.Claims) == 0 {
		return checks.Passf(drill.SnapshotIntegrityName, ev, "downloaded the whole %s (the store has no SHA-256 for it: no x-amz-checksum-sha256, sha256 metadata or %s sidecar)", one, entries.SidecarSuffix)
	}
	var from []string
	for _, c := range d.Claims {
		from = append(from, c.From)
		if c.Sum != d.SHA256 {
			ev["expected"], ev["expectedFrom"] = c.Sum, c.From
			return checks.Failf(drill.SnapshotIntegrityName, ev, "the downloaded %s's SHA-256 is %s, but %s says %s: the object changed after it was written, or in transit", one, d.SHA256, c.From, c.Sum)
		}
	}
	ev["comparedWith"] = from
	return checks.Passf(drill.SnapshotIntegrityName, ev, "the downloaded %s's SHA-256 matches %s", one, strings.Join(from, " and "))
}

// Mismatch says why the download disagrees with the store ("" when it agrees), for a backup
// of many objects whose finding counts them.
func (d Download) Mismatch() string {
	if d.StoreBytes >= 0 && d.Bytes != d.StoreBytes {
		return fmt.Sprintf("%s (downloaded %d bytes, the store says %d)", d.Rel, d.Bytes, d.StoreBytes)
	}
	for _, c := range d.Claims {
		if c.Sum != d.SHA256 {
			return fmt.Sprintf("%s (SHA-256 %s, %s says %s)", d.Rel, d.SHA256, c.From, c.Sum)
		}
	}
	return ""
}

// sidecar reads the "<key>.sha256" object beside key ("" when there is none).
func (l *Location) sidecar(ctx context.Context, api API, key string) (string, error) {
	b, ok, err := l.ReadSmall(ctx, api, key+entries.SidecarSuffix, 4096)
	if err != nil {
		return "", l.Platform(err, "while reading the checksum sidecar of %s", path.Base(key))
	}
	if !ok {
		return "", nil
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 || HexSHA256(fields[0]) == "" {
		return "", BadSidecarError{path.Base(key)}
	}
	return HexSHA256(fields[0]), nil
}

// ReadSmall reads at most limit bytes of the object at key; ok is false when there is no
// such object. Its errors are the store's, unwrapped (the caller says what it was reading).
func (l *Location) ReadSmall(ctx context.Context, api API, key string, limit int64) (b []byte, ok bool, err error) {
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(l.Bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		var apiErr smithy.APIError
		if errors.As(err, &nsk) || (errors.As(err, &apiErr) && (apiErr.ErrorCode() == "NoSuchKey" || apiErr.ErrorCode() == "NotFound")) {
			return nil, false, nil
		}
		return nil, false, err
	}
	defer out.Body.Close()
	b, err = io.ReadAll(io.LimitReader(out.Body, limit))
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// HexSHA256 turns a SHA-256 in hex or base64 into lowercase hex ("" if it is neither).
func HexSHA256(v string) string {
	v = strings.TrimSpace(v)
	if b, err := hex.DecodeString(v); err == nil && len(b) == 32 {
		return strings.ToLower(v)
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == 32 {
		return hex.EncodeToString(b)
	}
	return ""
}

// errWrite marks a failure to write into scratch: the machine's fault, not the object's.
var errWrite = errors.New("could not write")

// writerOnly tags write errors with errWrite, so that a read error (the store's) is told from
// a full scratch disk.
type writerOnly struct{ f *os.File }

func (w writerOnly) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", errWrite, err)
	}
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
