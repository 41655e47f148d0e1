package audit

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/firedrill/firedrill/audit/policy"
)

// S3API is the part of the S3 client the auditor uses.
type S3API interface {
	s3.ListObjectsV2APIClient
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	GetObjectLockConfiguration(ctx context.Context, in *s3.GetObjectLockConfigurationInput, opts ...func(*s3.Options)) (*s3.GetObjectLockConfigurationOutput, error)
}

// NewS3Client builds the client of an S3 location: the standard AWS credential chain, or the
// environment variables or credentials file the location names, with its endpoint, region and
// addressing. Errors name a variable or file, never a key.
func NewS3Client(ctx context.Context, l *policy.Location) (*s3.Client, error) {
	s := l.S3
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(s.Region)}
	if s.MaxAttempts > 0 {
		opts = append(opts, awsconfig.WithRetryMaxAttempts(s.MaxAttempts))
	}
	cr := s.Credentials
	switch {
	case cr.AccessKeyIDEnv != "":
		ak, err := lookupEnv(cr.AccessKeyIDEnv, "accessKeyIdEnv")
		if err != nil {
			return nil, err
		}
		sk, err := lookupEnv(cr.SecretAccessKeyEnv, "secretAccessKeyEnv")
		if err != nil {
			return nil, err
		}
		tok := ""
		if cr.SessionTokenEnv != "" {
			if tok, err = lookupEnv(cr.SessionTokenEnv, "sessionTokenEnv"); err != nil {
				return nil, err
			}
		}
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, tok)))
	case cr.File != "":
		if _, err := os.Stat(cr.File); err != nil {
			return nil, fmt.Errorf("%w: credentials file %s: %w", ErrCredentials, cr.File, err)
		}
		opts = append(opts, awsconfig.WithSharedCredentialsFiles([]string{cr.File}))
		if cr.Profile != "" {
			opts = append(opts, awsconfig.WithSharedConfigProfile(cr.Profile))
		}
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: while loading the AWS configuration of location %s: %w", ErrCredentials, l.Name, err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
		}
		o.UsePathStyle = s.PathStyle
	}), nil
}

// lookupEnv reads the variable a credentials key names. Its error names the variable, unless
// the "name" looks like the credential itself (configuration validation refuses those; this is
// the last line for configurations built otherwise): then only the key is named.
func lookupEnv(name, key string) (string, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		if !policy.IsEnvName(name) {
			return "", fmt.Errorf("%w: the environment variable named by s3.credentials.%s is not set (its name is not shown: it is not a valid name, or looks like a credential)", ErrCredentials, key)
		}
		return "", fmt.Errorf("%w: environment variable %s is not set", ErrCredentials, name)
	}
	return v, nil
}

// S3Source is the objects under a prefix of a bucket.
type S3Source struct {
	Client S3API
	Bucket string
	// Prefix is the key prefix; backups' keys are relative to it.
	Prefix string
	// Match is a glob on the object's base name ("" matches all).
	Match string
	// PageSize is how many keys one listing request returns (default 1000, S3's maximum).
	PageSize int32
}

// Scan lists the objects page by page; only one page is held at a time.
func (s *S3Source) Scan(ctx context.Context, visit func(Backup) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String(s.Prefix)}
	if s.PageSize > 0 {
		in.MaxKeys = aws.Int32(s.PageSize)
	}
	p := s3.NewListObjectsV2Paginator(s.Client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("while listing s3://%s/%s: %w", s.Bucket, s.Prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			rel := strings.TrimPrefix(key, s.Prefix)
			if rel == "" || strings.HasSuffix(rel, "/") || !matches(s.Match, rel) {
				continue
			}
			b := Backup{Key: rel, Size: aws.ToInt64(o.Size), ETag: strings.Trim(aws.ToString(o.ETag), `"`)}
			if o.LastModified != nil {
				b.Time = *o.LastModified
			}
			if err := visit(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stat reads one object's size, time, checksums and lock state (HEAD).
func (s *S3Source) Stat(ctx context.Context, key string) (Backup, bool, error) {
	out, err := s.Client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(s.Prefix + key), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		var nf *types.NotFound
		var api smithy.APIError
		if errors.As(err, &nf) || (errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchKey")) {
			return Backup{}, false, nil
		}
		return Backup{}, false, fmt.Errorf("while reading s3://%s/%s%s: %w", s.Bucket, s.Prefix, key, err)
	}
	b := Backup{Key: key, Size: aws.ToInt64(out.ContentLength), ETag: strings.Trim(aws.ToString(out.ETag), `"`), Checksums: map[string]string{}}
	if out.LastModified != nil {
		b.Time = *out.LastModified
	}
	add := func(alg string, v *string) {
		if x := aws.ToString(v); x != "" && !strings.Contains(x, "-") { // "-N": a per-part (composite) checksum
			b.Checksums[alg] = x
		}
	}
	if out.ChecksumType != types.ChecksumTypeComposite {
		add("crc32", out.ChecksumCRC32)
		add("crc32c", out.ChecksumCRC32C)
		add("crc64nvme", out.ChecksumCRC64NVME)
		add("sha1", out.ChecksumSHA1)
		if v := aws.ToString(out.ChecksumSHA256); v != "" && !strings.Contains(v, "-") {
			if h := normalizeSHA256(v); h != "" {
				b.Checksums["sha256"] = h
			}
		}
	}
	// User metadata is whatever the writer sent: a claim, never the store's own word.
	for k, v := range out.Metadata {
		if strings.EqualFold(k, "sha256") {
			if h := normalizeSHA256(v); h != "" {
				b.claim("sha256", h)
			}
		}
	}
	if out.ObjectLockMode != "" || out.ObjectLockRetainUntilDate != nil || out.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn {
		b.Lock = &ObjectLock{Mode: string(out.ObjectLockMode), LegalHold: out.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn}
		if out.ObjectLockRetainUntilDate != nil {
			b.Lock.RetainUntil = *out.ObjectLockRetainUntilDate
		}
	}
	return b, true, nil
}

// Open reads one object (key relative to the prefix) as a stream.
func (s *S3Source) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Prefix + key)})
	if err != nil {
		return nil, fmt.Errorf("while reading s3://%s/%s%s: %w", s.Bucket, s.Prefix, key, err)
	}
	return out.Body, nil
}

// Claims reads the checksums sidecar objects beside key claim for it.
func (s *S3Source) Claims(ctx context.Context, key string) map[string]string {
	out := map[string]string{}
	readClaims(ctx, s, key, out)
	return out
}

// BucketLock reads the bucket's Object Lock configuration from the bucket itself.
func (s *S3Source) BucketLock(ctx context.Context) (BucketLock, error) {
	out, err := s.Client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.Bucket)})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && (api.ErrorCode() == "ObjectLockConfigurationNotFoundError" || api.ErrorCode() == "ObjectLockConfigurationNotFound") {
			return BucketLock{}, nil
		}
		return BucketLock{}, fmt.Errorf("while reading the Object Lock configuration of bucket %s: %w", s.Bucket, err)
	}
	c := out.ObjectLockConfiguration
	if c == nil || c.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		return BucketLock{}, nil
	}
	bl := BucketLock{Enabled: true}
	if c.Rule != nil && c.Rule.DefaultRetention != nil {
		r := c.Rule.DefaultRetention
		bl.DefaultMode = string(r.Mode)
		bl.DefaultRetention = time.Duration(aws.ToInt32(r.Days))*24*time.Hour + time.Duration(aws.ToInt32(r.Years))*365*24*time.Hour
	}
	return bl, nil
}

// normalizeSHA256 turns a SHA-256 in hex or base64 into lowercase hex ("" if it is neither).
func normalizeSHA256(v string) string {
	v = strings.TrimSpace(v)
	if b, err := hex.DecodeString(v); err == nil && len(b) == 32 {
		return strings.ToLower(v)
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == 32 {
		return hex.EncodeToString(b)
	}
	return ""
}
