package evidence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Store keeps records as objects <prefix>/<target>/<seq>.json. The key holds the sequence
// number only (not the kind and id, as DirStore's names do) so that two writers taking the same
// number write the same key: each Append puts with If-None-Match: *, and the loser of a race gets
// 412 (or 409 for a concurrent conditional write), reads the new end of the chain and retries.
// The chain therefore never forks, without a lock object that a crashed writer could leave.
type S3Store struct {
	client *s3.Client
	bucket string
	prefix string
	signer *Signer

	lockMode   types.ObjectLockMode
	retainFor  time.Duration
	now        func() time.Time
	maxRetries int
}

// NewS3Store returns a store in bucket under prefix that signs with signer (nil: unsigned).
func NewS3Store(client *s3.Client, bucket, prefix string, signer *Signer) *S3Store {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3Store{client: client, bucket: bucket, prefix: prefix, signer: signer, now: time.Now, maxRetries: 50}
}

// WithRetention puts every record under Object Lock (GOVERNANCE or COMPLIANCE) until now+d, so
// that it cannot be deleted or overwritten before then. The bucket must have Object Lock enabled.
func (s *S3Store) WithRetention(mode types.ObjectLockMode, d time.Duration, now func() time.Time) *S3Store {
	s.lockMode, s.retainFor = mode, d
	if now != nil {
		s.now = now
	}
	return s
}

func (s *S3Store) key(target string, seq int64) string {
	return s.prefix + target + "/" + seqName(seq) + ".json"
}

// Append stores r at the end of its target's chain.
func (s *S3Store) Append(ctx context.Context, r *Record) (*Stored, error) {
	if r.SchemaVersion == 0 {
		r.SchemaVersion = SchemaVersion
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		keys, err := s.keys(ctx, r.Target)
		if err != nil {
			return nil, err
		}
		r.Seq, r.Prev = 1, ""
		if n := len(keys); n > 0 {
			last, err := s.get(ctx, keys[n-1].Path)
			if err != nil {
				return nil, err
			}
			r.Seq, r.Prev = keys[n-1].Seq+1, sha256Hex(last)
		}
		b, err := seal(r, s.signer)
		if err != nil {
			return nil, err
		}
		k := s.key(r.Target, r.Seq)
		in := &s3.PutObjectInput{Bucket: &s.bucket, Key: &k, Body: strings.NewReader(string(b)), IfNoneMatch: aws.String("*"),
			ContentType: aws.String("application/json"), ContentLength: aws.Int64(int64(len(b)))}
		if s.lockMode != "" {
			in.ObjectLockMode = s.lockMode
			in.ObjectLockRetainUntilDate = aws.Time(s.now().Add(s.retainFor))
		}
		_, err = s.client.PutObject(ctx, in)
		if err == nil {
			st := &Stored{Record: *r, Digest: sha256Hex(b), Path: k, Signed: s.signer != nil}
			if s.signer != nil {
				st.KeyID = s.signer.KeyID()
			}
			return st, nil
		}
		if !lostRace(err) {
			return nil, fmt.Errorf("while writing evidence record s3://%s/%s: %w", s.bucket, k, err)
		}
		if attempt >= s.maxRetries {
			return nil, fmt.Errorf("while writing evidence record s3://%s/%s: still racing other writers after %d attempts: %w", s.bucket, k, attempt+1, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
}

// lostRace is true when another writer took the key first (412) or was writing it (409).
func lostRace(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && (re.HTTPStatusCode() == 412 || re.HTTPStatusCode() == 409)
}

// keys lists a target's record keys in sequence order (Bytes left empty).
func (s *S3Store) keys(ctx context.Context, target string) ([]Raw, error) {
	if !safeName.MatchString(target) {
		return nil, fmt.Errorf("target %q is not a valid record target", target)
	}
	pfx := s.prefix + target + "/"
	var out []Raw
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &pfx})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("while listing evidence records s3://%s/%s: %w", s.bucket, pfx, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if seq, ok := parseSeq(path.Base(k)); ok && path.Dir(k)+"/" == pfx {
				out = append(out, Raw{Path: k, Seq: seq})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func (s *S3Store) get(ctx context.Context, key string) ([]byte, error) {
	o, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, fmt.Errorf("while reading evidence record s3://%s/%s: %w", s.bucket, key, err)
	}
	defer o.Body.Close()
	b, err := io.ReadAll(o.Body)
	if err != nil {
		return nil, fmt.Errorf("while reading evidence record s3://%s/%s: %w", s.bucket, key, err)
	}
	return b, nil
}

// ListRaw returns a target's stored records in sequence order.
func (s *S3Store) ListRaw(ctx context.Context, target string) ([]Raw, error) {
	keys, err := s.keys(ctx, target)
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if keys[i].Bytes, err = s.get(ctx, keys[i].Path); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// List returns a target's records, oldest first.
func (s *S3Store) List(ctx context.Context, target string) ([]Stored, error) {
	raws, err := s.ListRaw(ctx, target)
	if err != nil {
		return nil, err
	}
	return decodeAll(raws)
}

// Targets lists the targets with records under the prefix.
func (s *S3Store) Targets(ctx context.Context) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("while listing evidence targets s3://%s/%s: %w", s.bucket, s.prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			t := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), s.prefix), "/")
			if safeName.MatchString(t) {
				out = append(out, t)
			}
		}
	}
	return out, nil
}
