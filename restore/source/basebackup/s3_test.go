package basebackup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/walarchive"
)

// fakeS3 is one bucket in memory; err, when set, fails every request (an unreachable bucket).
type fakeS3 struct {
	objects map[string][]byte
	err     error
	gets    []string
}

func (f *fakeS3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out s3.ListObjectsV2Output
	for k, b := range f.objects {
		if strings.HasPrefix(k, aws.ToString(in.Prefix)) {
			out.Contents = append(out.Contents, types.Object{Key: aws.String(k), Size: aws.Int64(int64(len(b))), LastModified: aws.Time(time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC))})
		}
	}
	slices.SortFunc(out.Contents, func(a, b types.Object) int { return strings.Compare(*a.Key, *b.Key) })
	return &out, nil
}

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	b, ok := f.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &types.NoSuchKey{}
	}
	f.gets = append(f.gets, aws.ToString(in.Key))
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func loc(api *fakeS3, prefix string) *S3Location {
	return &S3Location{Bucket: "b", Prefix: prefix, Where: "s3://b/" + prefix + " at http://127.0.0.1:1",
		Client: func(context.Context) (walarchive.S3API, error) { return api, nil }}
}

func TestS3(t *testing.T) {
	ctx := context.Background()
	seg := func(n uint64) string { return walarchive.SegmentName(1, n, walarchive.DefaultSegmentBytes) }
	api := &fakeS3{objects: map[string][]byte{
		"base/monday/backup_label":           []byte(labelFor("2")),
		"base/monday/PG_VERSION":             []byte("15\n"),
		"base/tuesday/base.tar.gz":           tarOf(t, true, map[string]string{"backup_label": labelFor("4"), "PG_VERSION": "15\n"}),
		"base/wednesday/base.tar":            tarOf(t, false, map[string]string{"backup_label": labelFor("6")}),
		"base/wednesday/backup_manifest":     []byte(`{"WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/6000028", "End-LSN": "0/6000100"}]}`),
		"base/notes/README":                  []byte("not a backup"),
		"wal/" + seg(4) + ".00000028.backup": []byte(labelFor("4") + "STOP WAL LOCATION: 0/4000138 (file 000000010000000000000004)\nSTOP TIME: 2026-11-30 10:04:30 UTC\n"),
		"wal/" + seg(4):                      make([]byte, 17),
		"wal/" + seg(5):                      make([]byte, 17),
		"wal/" + seg(7):                      make([]byte, 17),
		"wal/sub/" + seg(6):                  make([]byte, 17), // not the archive's top level
	}}
	s := &Source{Target: "orders", S3: loc(api, "base/"), ArchiveS3: loc(api, "wal/")}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list {
		ids = append(ids, m.ID+":"+m.Attributes[AttrFormat]+":"+m.StopLSN)
	}
	if len(list) != 3 || !slices.Contains(ids, "wednesday:tar:0/6000100") || !slices.Contains(ids, "monday:plain:") {
		t.Fatalf("List = %v, want monday (plain), tuesday and wednesday (tar, stop from its manifest)", ids)
	}
	tue, err := s.Get(ctx, "tuesday")
	if err != nil {
		t.Fatal(err)
	}
	if tue.StopLSN != "0/4000138" || tue.TakenAt.Format("15:04:05") != "10:04:30" || tue.Attributes[AttrCompression] != "gz" {
		t.Errorf("tuesday (its .backup file read from the S3 archive) = %+v", tue)
	}
	if _, err := s.Get(ctx, "notes"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("Get(notes) = %v, want not found", err)
	}
	for _, k := range api.gets {
		if strings.HasPrefix(k, "wal/") && !strings.HasSuffix(k, ".backup") {
			t.Errorf("listing read segment %s: the archive is listed, not downloaded", k)
		}
	}

	// The download is the backup's objects, under their paths.
	dl := filepath.Join(t.TempDir(), "download")
	b, err := s.downloadS3(ctx, "wednesday", dl, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if b.format != FormatTar || b.stopLSN.String() != "0/6000100" {
		t.Errorf("downloaded wednesday = %+v", b)
	}
	if _, err := os.Stat(filepath.Join(dl, "base.tar")); err != nil {
		t.Error(err)
	}

	// The archive's plan from tuesday's backup names the first missing segment.
	arch, err := s.ListArchive(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(arch.Names(), "sub/"+seg(6)) || arch.Dir != s.ArchiveS3.Where {
		t.Errorf("archive listing = %v at %s", arch.Names(), arch.Dir)
	}
	from := walarchive.From{Timeline: 1, StartLSN: walarchive.LSN(4*walarchive.DefaultSegmentBytes + 0x28), StopLSN: walarchive.LSN(4*walarchive.DefaultSegmentBytes + 0x138)}
	plan, perr := arch.Plan(from)
	if f := ContinuityFinding(s.ArchiveWhere(), from, plan, perr); !strings.Contains(f.Message, seg(6)) {
		t.Errorf("continuity = %s: %s, want the missing %s named", f.Status, f.Message, seg(6))
	}
	staging := filepath.Join(t.TempDir(), "wal")
	if err := Stage(ctx, arch, plan.Files, staging); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(staging, seg(5))); err != nil {
		t.Errorf("segment 5 not staged from S3: %v", err)
	}
}

func TestS3Unreachable(t *testing.T) {
	ctx := context.Background()
	api := &fakeS3{err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused")}
	s := &Source{Target: "orders", S3: loc(api, "base/"), ArchiveS3: loc(api, "wal/")}
	if _, err := s.List(ctx); !errors.Is(err, drill.ErrPlatform) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("List = %v, want ErrPlatform with the reason", err)
	}
	if _, err := s.ListArchive(ctx, 0); !errors.Is(err, drill.ErrPlatform) {
		t.Errorf("ListArchive = %v, want ErrPlatform", err)
	}
	noClient := &Source{Target: "orders", S3: &S3Location{Where: "s3://b/ at x", Client: func(context.Context) (walarchive.S3API, error) {
		return nil, errors.New("environment variable FD_AK is not set")
	}}}
	if _, err := noClient.List(ctx); !errors.Is(err, drill.ErrPlatform) {
		t.Errorf("List without a client = %v, want ErrPlatform", err)
	}
}
