package dump

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/snapshot"
)

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func write(t *testing.T, path string, b []byte, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestDetect(t *testing.T) {
	dir := t.TempDir()
	custom := []byte("PGDMP\x01\x0f\x00rest")
	plain := []byte("--\n-- PostgreSQL database dump\n--\n")
	tests := []struct {
		name    string
		content []byte
		dir     bool
		want    Format
		err     bool
	}{
		{name: "custom", content: custom, want: Format{Kind: FormatCustom}},
		{name: "plain", content: plain, want: Format{Kind: FormatPlain}},
		{name: "gzip custom", content: gz(t, custom), want: Format{Kind: FormatCustom, Compression: CompressionGzip}},
		{name: "gzip plain", content: gz(t, plain), want: Format{Kind: FormatPlain, Compression: CompressionGzip}},
		{name: "short file", content: []byte("PG"), want: Format{Kind: FormatPlain}},
		{name: "broken gzip", content: []byte{0x1f, 0x8b, 0x00}, want: Format{Kind: FormatUnknown, Compression: CompressionGzip}, err: true},
		{name: "zstd custom", content: zst(t, custom), want: Format{Kind: FormatCustom, Compression: CompressionZstd}},
		{name: "zstd plain", content: zst(t, plain), want: Format{Kind: FormatPlain, Compression: CompressionZstd}},
		{name: "zstd named .gz", content: zst(t, custom), want: Format{Kind: FormatCustom, Compression: CompressionZstd}},
		{name: "broken zstd", content: append(append([]byte{}, zstdMagic...), 0xff, 0xff, 0xff, 0xff), want: Format{Kind: FormatUnknown, Compression: CompressionZstd}, err: true},
		{name: "tar of a directory dump", content: tarOf(t, dirDump), want: Format{Kind: FormatDirectory, Tar: true}},
		{name: "gzip tar of a directory dump", content: gz(t, tarOf(t, dirDump)), want: Format{Kind: FormatDirectory, Compression: CompressionGzip, Tar: true}},
		{name: "zstd tar of a directory dump", content: zst(t, tarOf(t, dirDump)), want: Format{Kind: FormatDirectory, Compression: CompressionZstd, Tar: true}},
		{name: "pg_dump tar", content: tarOf(t, pgDumpTarFiles), want: Format{Kind: FormatTar}},
		{name: "gzip pg_dump tar", content: gz(t, tarOf(t, pgDumpTarFiles)), want: Format{Kind: FormatTar, Compression: CompressionGzip}},
		{name: "directory", dir: true, want: Format{Kind: FormatDirectory}},
		{name: "directory without toc", dir: true, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if tt.dir {
				if err := os.Mkdir(p, 0o700); err != nil {
					t.Fatal(err)
				}
				if !tt.err {
					write(t, filepath.Join(p, "toc.dat"), custom, time.Now())
				}
			} else {
				write(t, p, tt.content, time.Now())
			}
			got, err := Detect(p)
			if err != nil && tt.err && !errors.Is(err, ErrCorrupt) && got.Kind == FormatUnknown {
				t.Errorf("Detect error %v does not wrap ErrCorrupt", err)
			}
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("Detect = %+v, %v; want %+v (error: %v)", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	write(t, filepath.Join(dir, "a.dump"), []byte("PGDMP..."), base)
	write(t, filepath.Join(dir, "b.sql.gz"), gz(t, []byte("-- SQL\n")), base.Add(2*time.Hour))
	write(t, filepath.Join(dir, "b.sql.gz.sha256"), []byte("00  b.sql.gz\n"), base.Add(3*time.Hour))
	write(t, filepath.Join(dir, ".hidden"), []byte("x"), base.Add(4*time.Hour))
	// A compressed file that cannot be read is listed (oldest here): its drill fails, naming it.
	write(t, filepath.Join(dir, "d.broken.gz"), []byte{0x1f, 0x8b, 0x00}, base.Add(-time.Hour))
	if err := os.Mkdir(filepath.Join(dir, "c.dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "c.dir", "toc.dat"), []byte("PGDMP"), base)
	write(t, filepath.Join(dir, "c.dir", "3.dat"), []byte("12345"), base)
	if err := os.Chtimes(filepath.Join(dir, "c.dir"), base.Add(time.Hour), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "not-a-dump"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pattern string
		want    []string
	}{
		{"", []string{"b.sql.gz", "c.dir", "a.dump", "d.broken.gz"}},
		{"*.dump", []string{"a.dump"}},
		{"*.sha256", nil},
		{"*.gz", []string{"b.sql.gz", "d.broken.gz"}},
	}
	for _, tt := range tests {
		t.Run("pattern "+tt.pattern, func(t *testing.T) {
			s := &Source{Target: "orders", Dir: dir, Pattern: tt.pattern}
			got, err := s.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("List = %v, want %v", ids, tt.want)
			}
		})
	}
	s := &Source{Target: "orders", Dir: dir}
	m, err := s.Get(context.Background(), "c.dir")
	if err != nil {
		t.Fatal(err)
	}
	if m.SizeBytes != 10 || m.Attributes[AttrFormat] != FormatDirectory || m.Driver != Driver || !m.TakenAt.Equal(base.Add(time.Hour)) {
		t.Errorf("Get(c.dir) = %+v", m)
	}
	if m, _ := s.Get(context.Background(), "b.sql.gz"); m == nil || m.Attributes[AttrCompression] != CompressionGzip || m.Attributes[AttrFormat] != FormatPlain {
		t.Errorf("Get(b.sql.gz) = %+v", m)
	}
	for _, id := range []string{"../etc", "missing", "b.sql.gz.sha256", "not-a-dump"} {
		if _, err := s.Get(context.Background(), id); !errorsIs(err, snapshot.ErrNotFound) {
			t.Errorf("Get(%q) error %v, want ErrNotFound", id, err)
		}
	}
}

func TestVerifySidecar(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.dump")
	write(t, p, []byte("hello"), time.Now())
	const sum = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	tests := []struct {
		name, sidecar string
		want          checks.Status
	}{
		{"none", "", checks.Pass},
		{"match", sum + "  x.dump\n", checks.Pass},
		{"mismatch", strings.Repeat("0", 64) + "  x.dump\n", checks.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(p + ".sha256")
			if tt.sidecar != "" {
				write(t, p+".sha256", []byte(tt.sidecar), time.Now())
			}
			f, err := verify(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if f.Status != tt.want || f.Evidence["sha256"] != sum {
				t.Errorf("verify = %+v", f)
			}
		})
	}
}

func TestScanRoles(t *testing.T) {
	sql := `ALTER TABLE public.t OWNER TO app;
ALTER SCHEMA s OWNER TO "Mixed ""Case""";
GRANT SELECT ON TABLE public.t TO reader, "Writer";
GRANT ALL ON SCHEMA public TO admin WITH GRANT OPTION;
REVOKE ALL ON TABLE public.t FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE deployer IN SCHEMA public GRANT SELECT ON TABLES TO pg_read_all_data;
ALTER TABLE public.u OWNER TO postgres;
COPY public.t (a) FROM stdin;
ALTER TABLE x OWNER TO not_a_role;
\.
`
	got, err := ScanRoles(strings.NewReader(sql))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Mixed \"Case\"", "Writer", "admin", "app", "deployer", "reader"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ScanRoles = %q, want %q", got, want)
	}
}

func TestMajorOf(t *testing.T) {
	for in, want := range map[string]string{"15.18": "15", "9.6.3": "9.6", "17beta1": "17", "": ""} {
		if got := majorOf(in); got != want {
			t.Errorf("majorOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func errorsIs(err, target error) bool { return err != nil && errors.Is(err, target) }
