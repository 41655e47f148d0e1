package dump

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func zst(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type member struct {
	name string
	body []byte
	kind byte
}

// dirDump is what tar -C parent -cf x.tar orders.dir writes of a directory dump.
var dirDump = []member{
	{name: "orders.dir/", kind: tar.TypeDir},
	{name: "orders.dir/3345.dat.gz", body: []byte("data")},
	{name: "orders.dir/toc.dat", body: []byte("PGDMP\x01\x0f\x00\x04\x08\x05rest")},
}

// pgDumpTarFiles is how pg_dump -Ft starts: a tar-format toc.dat first.
var pgDumpTarFiles = []member{
	{name: "toc.dat", body: []byte("PGDMP\x01\x0f\x00\x04\x08\x03rest")},
	{name: "3345.dat", body: []byte("data")},
	{name: "restore.sql", body: []byte("--")},
}

func tarOf(t *testing.T, ms []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Mode: 0o600, Size: int64(len(m.body)), Typeflag: m.kind, ModTime: time.Unix(0, 0)}
		if m.kind == 0 {
			h.Typeflag = tar.TypeReg
		}
		if m.kind != tar.TypeReg && m.kind != 0 {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(m.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A truncated compressed dump reads to an error wrapping ErrCorrupt that names the file.
func TestOpenTruncated(t *testing.T) {
	content := bytes.Repeat([]byte("INSERT INTO t VALUES (42);\n"), 50000)
	tests := []struct {
		name string
		f    Format
		body []byte
	}{
		{"orders.sql.gz", Format{Kind: FormatPlain, Compression: CompressionGzip}, gz(t, content)},
		{"orders.sql.zst", Format{Kind: FormatPlain, Compression: CompressionZstd}, zst(t, content)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			whole, cut := filepath.Join(dir, "whole-"+tt.name), filepath.Join(dir, tt.name)
			write(t, whole, tt.body, time.Now())
			write(t, cut, tt.body[:len(tt.body)/2], time.Now())
			r, err := open(whole, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("whole: %d bytes, %v", len(got), err)
			}
			r, err = open(cut, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = io.Copy(io.Discard, r)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.name) {
				t.Errorf("truncated: %v, want ErrCorrupt naming %s", err, tt.name)
			}
			if cr := r.(*corruptReader); cr.Err() == nil {
				t.Error("the reader does not keep its error")
			}
		})
	}
}

func TestUntar(t *testing.T) {
	whole := tarOf(t, dirDump)
	tests := []struct {
		name    string
		body    []byte
		f       Format
		wantDir string
		corrupt string
	}{
		{name: "tar with a top directory", body: whole, f: Format{Kind: FormatDirectory, Tar: true}, wantDir: "orders.dir"},
		{name: "zstd tar", body: zst(t, whole), f: Format{Kind: FormatDirectory, Compression: CompressionZstd, Tar: true}, wantDir: "orders.dir"},
		{name: "tar of the directory's content", body: tarOf(t, []member{{name: "./toc.dat", body: []byte("PGDMP")}, {name: "./1.dat", body: []byte("x")}}),
			f: Format{Kind: FormatDirectory, Tar: true}, wantDir: "."},
		{name: "truncated gzip tar", body: gz(t, whole)[:len(gz(t, whole))-30], f: Format{Kind: FormatDirectory, Compression: CompressionGzip, Tar: true}, corrupt: "the-dump"},
		{name: "truncated tar", body: whole[:1024+100], f: Format{Kind: FormatDirectory, Tar: true}, corrupt: "cut short"},
		{name: "no toc.dat", body: tarOf(t, []member{{name: "a.dat", body: []byte("x")}}), f: Format{Kind: FormatDirectory, Tar: true}, corrupt: "0 toc.dat"},
		{name: "path outside", body: tarOf(t, []member{{name: "../evil", body: []byte("x")}}), f: Format{Kind: FormatDirectory, Tar: true}, corrupt: "outside"},
		{name: "symlink is not followed", body: tarOf(t, append([]member{{name: "orders.dir/link", kind: tar.TypeSymlink}}, dirDump...)), f: Format{Kind: FormatDirectory, Tar: true}, wantDir: "orders.dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "the-dump")
			write(t, src, tt.body, time.Now())
			dst := filepath.Join(dir, "out")
			got, err := untar(context.Background(), src, tt.f, dst)
			if tt.corrupt != "" {
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.corrupt) {
					t.Fatalf("untar error %v, want ErrCorrupt with %q", err, tt.corrupt)
				}
				if _, err := os.Stat(filepath.Join(dir, "evil")); err == nil {
					t.Error("a member was written outside the destination")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dst, tt.wantDir); got != want {
				t.Errorf("untar = %s, want %s", got, want)
			}
			if _, err := os.Stat(filepath.Join(got, "toc.dat")); err != nil {
				t.Error(err)
			}
			if _, err := os.Lstat(filepath.Join(got, "link")); err == nil {
				t.Error("a symlink was unpacked")
			}
		})
	}
}
