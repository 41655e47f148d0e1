package files

import (
	"bytes"
	"context"
	"encoding/binary"
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

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	enginemariadb "github.com/firedrill/firedrill/restore/engine/mariadb"
	"github.com/firedrill/firedrill/restore/snapshot"
)

// sqlDump is the shape mariadb-dump writes: a header naming the tool, the server and the
// database, statements, and the closing line.
const sqlDump = `-- MariaDB dump 10.19-11.4.5-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: 127.0.0.1    Database: shop
-- ------------------------------------------------------
-- Server version	10.11.19-MariaDB-0+deb12u1-log

CREATE TABLE orders (id int);
INSERT INTO orders VALUES (1),(2),(3);

-- Dump completed on 2026-11-30 12:00:00
`

// archive is the start of a mongodump --archive stream: its magic number, then bytes.
func archive(rest string) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, mongoArchiveMagic), rest...)
}

func TestListLogical(t *testing.T) {
	sqlDir := t.TempDir()
	write(t, filepath.Join(sqlDir, "shop-1.sql"), []byte(sqlDump), 1*time.Hour)
	write(t, filepath.Join(sqlDir, "shop-2.sql.gz"), gz(t, []byte(sqlDump)), 2*time.Hour)
	write(t, filepath.Join(sqlDir, "shop-2.sql.gz.sha256"), []byte("x  shop-2.sql.gz\n"), 3*time.Hour)
	write(t, filepath.Join(sqlDir, "shop-3.sql.zst"), []byte("zstd"), 3*time.Hour)
	write(t, filepath.Join(sqlDir, "notes.txt"), []byte("not a dump"), 4*time.Hour)
	write(t, filepath.Join(sqlDir, "dir.sql", "x"), []byte("a directory"), 4*time.Hour)

	mongoDir := t.TempDir()
	write(t, filepath.Join(mongoDir, "app-1.archive"), archive("plain"), 1*time.Hour)
	write(t, filepath.Join(mongoDir, "app-2.archive.gz"), gz(t, archive("gzipped")), 2*time.Hour)
	// mongodump --archive=app-3.archive.gz without --gzip: the name says gz, the bytes do not.
	write(t, filepath.Join(mongoDir, "app-3.archive.gz"), archive("named gz"), 3*time.Hour)
	write(t, filepath.Join(mongoDir, "app.bson"), []byte("a collection"), 4*time.Hour)

	for _, tc := range []struct {
		name        string
		src         Source
		want        []string
		compression map[string]string
	}{
		{"mariadb-dump", Source{Kind: KindMariaDBDump, Dir: sqlDir}, []string{"shop-2.sql.gz", "shop-1.sql"},
			map[string]string{"shop-2.sql.gz": "gzip", "shop-1.sql": ""}},
		{"mariadb-dump pattern", Source{Kind: KindMariaDBDump, Dir: sqlDir, Pattern: "*.sql"}, []string{"shop-1.sql"}, nil},
		{"mongodump sniffs gzip", Source{Kind: KindMongoDump, Dir: mongoDir}, []string{"app-3.archive.gz", "app-2.archive.gz", "app-1.archive"},
			map[string]string{"app-3.archive.gz": "", "app-2.archive.gz": "gzip", "app-1.archive": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.src.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Fatalf("List = %v, want %v", ids(got), tc.want)
			}
			for _, m := range got {
				if m.Mode != "logical" || m.Driver != Driver || m.Files != 1 {
					t.Errorf("%s: metadata %+v", m.ID, m)
				}
				if c, ok := tc.compression[m.ID]; ok && m.Attributes[AttrCompression] != c {
					t.Errorf("%s: compression %q, want %q", m.ID, m.Attributes[AttrCompression], c)
				}
				if tc.src.Kind == KindMariaDBDump && m.EngineVersion != "10.11.19-MariaDB-0+deb12u1-log" {
					t.Errorf("%s: engine version %q, want the header's", m.ID, m.EngineVersion)
				}
			}
		})
	}
}

func TestMaterializeLogical(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"whole.sql.gz":       gz(t, []byte(sqlDump)),
		"cut.sql":            []byte(sqlDump[:strings.Index(sqlDump, "INSERT")+20]),
		"noheader.sql":       []byte("CREATE TABLE t (a int);\n"),
		"notgzip.sql.gz":     []byte(sqlDump),
		"cutgz.sql.gz":       gz(t, []byte(sqlDump))[:60],
		"app.archive.gz":     gz(t, archive("documents")),
		"app-plain.archive":  archive("documents"),
		"notarchive.archive": []byte("{\"a\": 1}"),
		"sidecar-bad.sql":    []byte(sqlDump),
	}
	for name, b := range files {
		write(t, filepath.Join(dir, name), b, time.Hour)
	}
	write(t, filepath.Join(dir, "sidecar-bad.sql.sha256"), []byte(strings.Repeat("0", 64)+"  sidecar-bad.sql\n"), time.Hour)
	for _, tc := range []struct {
		kind, id, check string
		status          checks.Status
		msg             string
		format          string
	}{
		{KindMariaDBDump, "whole.sql.gz", DumpFormatName, checks.Pass, "is a whole MariaDB dump", drill.LogicalSQL},
		{KindMariaDBDump, "cut.sql", DumpFormatName, checks.Fail, "the dump is truncated", ""},
		{KindMariaDBDump, "noheader.sql", DumpFormatName, checks.Pass, "has no mariadb-dump header", drill.LogicalSQL},
		{KindMariaDBDump, "notgzip.sql.gz", drill.SnapshotIntegrityName, checks.Fail, "does not decompress", ""},
		{KindMariaDBDump, "cutgz.sql.gz", drill.SnapshotIntegrityName, checks.Fail, "does not decompress", ""},
		{KindMariaDBDump, "sidecar-bad.sql", drill.SnapshotIntegrityName, checks.Fail, "but its sidecar says", ""},
		{KindMongoDump, "app.archive.gz", DumpFormatName, checks.Pass, "opens as a mongodump archive", drill.LogicalMongoArchive},
		{KindMongoDump, "app-plain.archive", DumpFormatName, checks.Pass, "opens as a mongodump archive", drill.LogicalMongoArchive},
		{KindMongoDump, "notarchive.archive", DumpFormatName, checks.Fail, "is not a mongodump archive", ""},
	} {
		t.Run(tc.id, func(t *testing.T) {
			src := &Source{Kind: tc.kind, Dir: dir, Engine: "mariadb"}
			meta, err := src.Get(context.Background(), tc.id)
			if err != nil {
				t.Fatal(err)
			}
			scratch := t.TempDir()
			cp, err := src.Materialize(context.Background(), drill.MaterializeRequest{Snapshot: meta, ScratchDir: scratch, Status: func(string) {}})
			if err != nil {
				t.Fatal(err)
			}
			var f *checks.Finding
			for i := range cp.Findings {
				if cp.Findings[i].Check == tc.check {
					f = &cp.Findings[i]
				}
			}
			if f == nil || f.Status != tc.status || !strings.Contains(f.Message, tc.msg) {
				t.Fatalf("findings %+v: want %s %s with %q", cp.Findings, tc.check, tc.status, tc.msg)
			}
			if cp.Damaged != (tc.status == checks.Fail) || cp.DataDir != "" {
				t.Errorf("copy damaged %v, data dir %q", cp.Damaged, cp.DataDir)
			}
			if tc.format == "" {
				return
			}
			l := cp.Logical
			if l == nil || l.Format != tc.format || filepath.Dir(l.Path) != filepath.Join(scratch, "clone", "dump") || strings.HasSuffix(l.Path, ".gz") {
				t.Fatalf("logical %+v: want a decompressed %s in scratch", l, tc.format)
			}
			b, err := os.ReadFile(l.Path)
			if err != nil || int64(len(b)) != l.Bytes {
				t.Fatalf("read %d bytes (%v), logical says %d", len(b), err, l.Bytes)
			}
			if tc.kind == KindMongoDump && !bytes.HasPrefix(b, archive("")) {
				t.Errorf("the materialised archive does not open with the magic number: %x", b[:4])
			}
		})
	}
}

// fakeS3 serves objects from memory.
type fakeS3 struct {
	objects map[string][]byte
	meta    map[string]map[string]string
	times   map[string]time.Time
	gets    int
}

func (f *fakeS3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	out := &s3.ListObjectsV2Output{}
	for k, b := range f.objects {
		if strings.HasPrefix(k, aws.ToString(in.Prefix)) {
			out.Contents = append(out.Contents, types.Object{Key: aws.String(k), Size: aws.Int64(int64(len(b))), LastModified: aws.Time(f.times[k])})
		}
	}
	slices.SortFunc(out.Contents, func(a, b types.Object) int { return strings.Compare(*a.Key, *b.Key) })
	return out, nil
}

func (f *fakeS3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	b, ok := f.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &types.NotFound{}
	}
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(int64(len(b))), Metadata: f.meta[aws.ToString(in.Key)]}, nil
}

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.gets++
	b, ok := f.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &types.NoSuchKey{}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func s3Source(kind, prefix string, f *fakeS3) *Source {
	return &Source{Target: "app", Engine: "mongodb", Kind: kind, S3: &S3Location{Bucket: "b", Prefix: prefix, Where: "s3://b/" + prefix,
		Client: func(context.Context) (S3API, error) { return f, nil }}}
}

func TestS3Logical(t *testing.T) {
	arch := gz(t, archive("documents"))
	sqlgz := gz(t, []byte(sqlDump))
	f := &fakeS3{
		objects: map[string][]byte{
			"mongo/app-1.archive.gz": arch, "mongo/daily/app-2.archive": archive("newer"), "mongo/app.bson": []byte("x"),
			"mongo/app-3.archive": []byte("not an archive"),
			"sql/shop-1.sql.gz":   sqlgz, "sql/shop-1.sql.gz.sha256": []byte(sum(sqlgz) + "  shop-1.sql.gz\n"),
			"sql/shop-2.sql": []byte(sqlDump),
		},
		meta: map[string]map[string]string{"mongo/app-1.archive.gz": {"sha256": sum(arch)}, "sql/shop-2.sql": {"sha256": strings.Repeat("0", 64)}},
		times: map[string]time.Time{"mongo/app-1.archive.gz": base, "mongo/daily/app-2.archive": base.Add(time.Hour), "mongo/app-3.archive": base.Add(-time.Hour),
			"sql/shop-1.sql.gz": base, "sql/shop-2.sql": base.Add(time.Hour)},
	}
	mongo := s3Source(KindMongoDump, "mongo/", f)
	list, err := mongo.List(context.Background())
	if err != nil || !slices.Equal(ids(list), []string{"daily/app-2.archive", "app-1.archive.gz", "app-3.archive"}) {
		t.Fatalf("List = %v, %v", ids(list), err)
	}
	materialize := func(src *Source, id string) *drill.Copy {
		t.Helper()
		meta, err := src.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		scratch := t.TempDir()
		cp, err := src.Materialize(context.Background(), drill.MaterializeRequest{Snapshot: meta, ScratchDir: scratch, Status: func(string) {}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(scratch, "download")); !os.IsNotExist(err) {
			t.Errorf("the download directory outlived the copy: %v", err)
		}
		return cp
	}
	cp := materialize(mongo, "app-1.archive.gz")
	if cp.Damaged || cp.Logical == nil || cp.Logical.Format != drill.LogicalMongoArchive || !strings.Contains(cp.Findings[0].Message, "sha256 metadata") {
		t.Fatalf("copy %+v, findings %+v: want a verified, decompressed archive", cp.Logical, cp.Findings)
	}
	if b, _ := os.ReadFile(cp.Logical.Path); !bytes.Equal(b, archive("documents")) || filepath.Base(cp.Logical.Path) != "app-1.archive" {
		t.Errorf("materialised %s: %q", cp.Logical.Path, b)
	}
	if cp := materialize(mongo, "app-3.archive"); !cp.Damaged || len(cp.Notes) == 0 {
		t.Errorf("a non-archive without checksums: damaged %v, notes %v; want damaged, with a note that the store has no SHA-256", cp.Damaged, cp.Notes)
	}

	sql := s3Source(KindMariaDBDump, "sql/", f)
	if cp := materialize(sql, "shop-1.sql.gz"); cp.Damaged || cp.Logical == nil || !strings.Contains(cp.Findings[0].Message, "sidecar object shop-1.sql.gz.sha256") {
		t.Errorf("shop-1.sql.gz: %+v %+v, want verified by its sidecar object", cp.Logical, cp.Findings)
	}
	if cp := materialize(sql, "shop-2.sql"); !cp.Damaged || cp.Logical != nil || cp.Findings[0].Status != checks.Fail {
		t.Errorf("shop-2.sql with wrong metadata: %+v %+v, want damaged and nothing to load", cp.Logical, cp.Findings)
	}
	if _, err := sql.Get(context.Background(), "shop-9.sql"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("Get of an absent dump: %v", err)
	}
}

func TestS3MariaDBBackupList(t *testing.T) {
	f := &fakeS3{objects: map[string][]byte{
		"mb/full-1/ibdata1":                []byte("pages"),
		"mb/full-1/shop/orders.ibd":        []byte("orders"),
		"mb/full-1/xtrabackup_checkpoints": []byte("backup_type = full-backuped\nto_lsn = 42\n"),
		"mb/full-1/xtrabackup_binlog_info": []byte("binlog.000003\t1234\t0-1-56\n"),
		"mb/full-1/xtrabackup_info":        []byte("server_version = 10.11.19-MariaDB\n"),
		"mb/full-1.sha256":                 []byte("x  ./ibdata1\n"),
		"mb/inc-2/xtrabackup_checkpoints":  []byte("backup_type = incremental\n"),
		"mb/stray/ibdata1":                 []byte("x"),
		"mb/full-3/xtrabackup_checkpoints": []byte("backup_type = full-prepared\n"),
	}, times: map[string]time.Time{"mb/full-1/xtrabackup_checkpoints": base, "mb/full-3/xtrabackup_checkpoints": base.Add(time.Hour)}}
	src := s3Source(KindMariaDBBackup, "mb/", f)
	src.Engine = "mariadb"
	list, err := src.List(context.Background())
	if err != nil || !slices.Equal(ids(list), []string{"full-3", "full-1"}) {
		t.Fatalf("List = %v, %v: want full-3, full-1 (incremental and stray passed over)", ids(list), err)
	}
	m := list[1]
	if m.Files != 5 || m.SizeBytes == 0 || m.EngineVersion != "10.11.19-MariaDB" || m.Attributes[AttrBackupType] != "full-backuped" ||
		m.Attributes[enginemariadb.AttrBinlogFile] != "binlog.000003" || m.Attributes[enginemariadb.AttrGTIDBinlogPos] != "0-1-56" {
		t.Errorf("full-1: %+v", m)
	}
}
