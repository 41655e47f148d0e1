package dump

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
)

// fakeS3 serves objects from memory; err, when set, is every call's answer.
type fakeS3 struct {
	objects map[string][]byte
	heads   map[string]*s3.HeadObjectOutput
	times   map[string]time.Time
	err     error
}

func (f *fakeS3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := &s3.ListObjectsV2Output{}
	for k, b := range f.objects {
		if strings.HasPrefix(k, aws.ToString(in.Prefix)) {
			out.Contents = append(out.Contents, types.Object{Key: aws.String(k), Size: aws.Int64(int64(len(b))), LastModified: aws.Time(f.times[k])})
		}
	}
	return out, nil
}

func (f *fakeS3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	h := f.heads[aws.ToString(in.Key)]
	if h == nil {
		h = &s3.HeadObjectOutput{}
	}
	h.ContentLength = aws.Int64(int64(len(f.objects[aws.ToString(in.Key)])))
	return h, nil
}

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	b, ok := f.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &types.NoSuchKey{}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func TestS3ListAndChecksums(t *testing.T) {
	body := []byte("PGDMP the dump")
	sum := sha256.Sum256(body)
	good, b64 := hex.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(sum[:])
	bad := strings.Repeat("0", 64)
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		head    *s3.HeadObjectOutput
		sidecar string
		want    checks.Status
		msg     string
	}{
		{name: "nothing to compare", want: checks.Pass, msg: "the store has no SHA-256"},
		{name: "store checksum", head: &s3.HeadObjectOutput{ChecksumSHA256: aws.String(b64)}, want: checks.Pass, msg: "x-amz-checksum-sha256"},
		{name: "composite checksum is not the object's", head: &s3.HeadObjectOutput{ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(make([]byte, 32))), ChecksumType: types.ChecksumTypeComposite}, want: checks.Pass, msg: "the store has no SHA-256"},
		{name: "metadata in base64", head: &s3.HeadObjectOutput{Metadata: map[string]string{"Sha256": b64}}, want: checks.Pass, msg: "sha256 metadata"},
		{name: "metadata mismatch", head: &s3.HeadObjectOutput{Metadata: map[string]string{"sha256": bad}}, want: checks.Fail, msg: "but the object's sha256 metadata says " + bad},
		{name: "sidecar", sidecar: good + "  orders.dump\n", want: checks.Pass, msg: "sidecar object orders.dump.sha256"},
		{name: "sidecar mismatch", sidecar: bad + "  orders.dump\n", want: checks.Fail, msg: "sidecar object orders.dump.sha256 says " + bad},
		{name: "store agrees, sidecar does not", head: &s3.HeadObjectOutput{ChecksumSHA256: aws.String(b64)}, sidecar: bad, want: checks.Fail, msg: "sidecar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeS3{objects: map[string][]byte{"pg/orders.dump": body, "pg/old.dump": body, "pg/notes.txt": []byte("x")},
				heads: map[string]*s3.HeadObjectOutput{"pg/orders.dump": tt.head},
				times: map[string]time.Time{"pg/orders.dump": now, "pg/old.dump": now.Add(-time.Hour), "pg/notes.txt": now.Add(time.Hour)}}
			if tt.sidecar != "" {
				f.objects["pg/orders.dump.sha256"] = []byte(tt.sidecar)
			}
			src := &Source{Target: "orders", Pattern: "*.dump", S3: &S3Location{Bucket: "b", Prefix: "pg/", Where: "s3://b/pg/",
				Client: func(context.Context) (S3API, error) { return f, nil }}}
			list, err := src.List(context.Background())
			if err != nil || len(list) != 2 || list[0].ID != "orders.dump" || list[1].ID != "old.dump" || list[0].SizeBytes != int64(len(body)) {
				t.Fatalf("List = %+v, %v", list, err)
			}
			dst := filepath.Join(t.TempDir(), "orders.dump")
			fd, err := src.download(context.Background(), "orders.dump", dst, func(string) {})
			if err != nil {
				t.Fatal(err)
			}
			if fd.Status != tt.want || !strings.Contains(fd.Message, tt.msg) || fd.Check != drill.SnapshotIntegrityName {
				t.Errorf("finding %s %q, want %s with %q", fd.Status, fd.Message, tt.want, tt.msg)
			}
		})
	}
}

func TestS3Unreachable(t *testing.T) {
	f := &fakeS3{err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused")}
	src := &Source{S3: &S3Location{Bucket: "b", Where: "s3://b/ at http://127.0.0.1:1", Client: func(context.Context) (S3API, error) { return f, nil }}}
	if _, err := src.List(context.Background()); !errors.Is(err, drill.ErrPlatform) || !strings.Contains(err.Error(), "while listing s3://b/ at http://127.0.0.1:1") {
		t.Errorf("List error %v, want ErrPlatform naming the location", err)
	}
	broken := &Source{S3: &S3Location{Where: "s3://b/", Client: func(context.Context) (S3API, error) {
		return nil, errors.New("environment variable DUMPS_AK is not set")
	}}}
	if _, err := broken.List(context.Background()); !errors.Is(err, drill.ErrPlatform) || !strings.Contains(err.Error(), "DUMPS_AK") {
		t.Errorf("List error %v, want ErrPlatform naming the variable", err)
	}
}
