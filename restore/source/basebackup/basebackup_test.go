package basebackup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/source/walarchive"
)

func labelFor(seg string) string {
	return strings.NewReplacer("%s", seg).Replace("START WAL LOCATION: 0/%s000028 (file 00000001000000000000000%s)\nCHECKPOINT LOCATION: 0/%s000060\nSTART TIME: 2026-11-30 10:0%s:00 UTC\nLABEL: nightly\nSTART TIMELINE: 1\n")
}

func tarOf(t *testing.T, gz bool, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = tar.NewWriter(zw)
	} else {
		w = tar.NewWriter(&buf)
	}
	for name, content := range files {
		if err := w.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	w.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	dir, archive := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "monday", "backup_label"), []byte(labelFor("2")))
	write(t, filepath.Join(dir, "monday", "PG_VERSION"), []byte("15\n"))
	write(t, filepath.Join(dir, "tuesday", "base.tar.gz"), tarOf(t, true, map[string]string{"backup_label": labelFor("4"), "PG_VERSION": "15\n"}))
	write(t, filepath.Join(dir, "wednesday", "base.tar"), tarOf(t, false, map[string]string{"backup_label": labelFor("6")}))
	write(t, filepath.Join(dir, "wednesday", "backup_manifest"), []byte(`{"WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/6000028", "End-LSN": "0/6000100"}]}`))
	write(t, filepath.Join(dir, "notes", "README"), []byte("not a backup"))
	// The archived .backup file of tuesday's backup says when it stopped.
	write(t, filepath.Join(archive, "000000010000000000000004.00000028.backup"),
		[]byte(labelFor("4")+"STOP WAL LOCATION: 0/4000138 (file 000000010000000000000004)\nSTOP TIME: 2026-11-30 10:04:30 UTC\n"))
	s := &Source{Target: "orders", Dir: dir, Archive: archive}
	list, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list {
		ids = append(ids, m.ID+":"+m.Attributes[AttrFormat]+":"+m.StopLSN)
	}
	if len(list) != 3 {
		t.Fatalf("List = %v, want three base backups", ids)
	}
	tue, err := s.Get(context.Background(), "tuesday")
	if err != nil {
		t.Fatal(err)
	}
	if tue.StopLSN != "0/4000138" || tue.TakenAt.Format("15:04:05") != "10:04:30" || tue.Attributes[AttrCompression] != "gz" || tue.StartLSN != "0/4000028" {
		t.Errorf("tuesday = %+v", tue)
	}
	wed, _ := s.Get(context.Background(), "wednesday")
	if wed == nil || wed.StopLSN != "0/6000100" {
		t.Errorf("wednesday's stop from its manifest = %+v", wed)
	}
	for _, id := range []string{"notes", "../x", "missing", ""} {
		if _, err := s.Get(context.Background(), id); !errors.Is(err, snapshot.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want not found", id, err)
		}
	}
	// Dir itself a base backup: one, called ".".
	one := &Source{Target: "orders", Dir: filepath.Join(dir, "monday")}
	if l, err := one.List(context.Background()); err != nil || len(l) != 1 || l[0].ID != "." {
		t.Errorf("a single backup directory lists %+v, %v", l, err)
	}
}

func TestUntarRefusesEscapes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "base.tar")
	write(t, p, tarOf(t, false, map[string]string{"../outside": "x"}))
	if err := untar(context.Background(), p, filepath.Join(dir, "data")); err == nil || !strings.Contains(err.Error(), "leaves the data directory") {
		t.Errorf("untar = %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "outside")); err == nil {
		t.Error("a file was written outside the data directory")
	}
}

func TestContinuityFinding(t *testing.T) {
	plan := &walarchive.Plan{TargetTimeline: 1, First: "000000010000000000000002", Last: "000000010000000000000003", Segments: 2}
	from := walarchive.From{Timeline: 1, StartLSN: 0x2000028}
	tests := []struct {
		name string
		err  error
		want checks.Status
		msg  string
	}{
		{"clean", nil, checks.Pass, "without a gap"},
		{"gap", &walarchive.GapError{Missing: "000000010000000000000004", After: "000000010000000000000003", Next: "000000010000000000000005"}, checks.Fail, "lacks segment 000000010000000000000004"},
		{"timeline", &walarchive.TimelineError{Timeline: 3, Reason: "history missing"}, checks.Fail, "broken timeline history"},
		{"unreadable", errors.New("permission denied"), checks.Error, "could not walk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ContinuityFinding("/archive", from, plan, tt.err)
			if f.Status != tt.want || !strings.Contains(f.Message, tt.msg) || f.Check != ContinuityName {
				t.Errorf("finding = %s %q, want %s containing %q", f.Status, f.Message, tt.want, tt.msg)
			}
		})
	}
}

func TestTablespacesOfAPlainBackup(t *testing.T) {
	root := t.TempDir()
	src, scratch := filepath.Join(root, "backup"), filepath.Join(root, "scratch")
	relocated := filepath.Join(root, "ts-copy")
	write(t, filepath.Join(src, "backup_label"), []byte(labelFor("2")))
	write(t, filepath.Join(src, "base", "5", "1259"), []byte("heap"))
	write(t, filepath.Join(relocated, "PG_15_202209061", "5", "16390"), []byte("spaced"))
	if err := os.MkdirAll(filepath.Join(src, "pg_tblspc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(relocated, filepath.Join(src, "pg_tblspc", "16385")); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(scratch, "data")
	spaces := &tablespaces{root: filepath.Join(scratch, "tablespaces"), original: map[string]string{}}
	if err := copyTree(context.Background(), src, data, spaces); err != nil {
		t.Fatal(err)
	}
	cp := &drill.Copy{Files: map[string][]byte{}}
	if err := spaces.finish(data, cp); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(scratch, "tablespaces", "16385")
	if cp.Tablespaces["16385"] != want || string(cp.Files["tablespace_map"]) != "16385 "+relocated+"\n" {
		t.Errorf("tablespaces %v, map %q", cp.Tablespaces, cp.Files["tablespace_map"])
	}
	if b, err := os.ReadFile(filepath.Join(data, "pg_tblspc", "16385", "PG_15_202209061", "5", "16390")); err != nil || string(b) != "spaced" {
		t.Errorf("the tablespace's file through pg_tblspc: %q %v", b, err)
	}
	if to, _ := os.Readlink(filepath.Join(data, "pg_tblspc", "16385")); to != want {
		t.Errorf("pg_tblspc/16385 -> %s, want the copy in scratch %s", to, want)
	}
	// Any other link is refused.
	if err := os.Symlink("/etc", filepath.Join(src, "base", "elsewhere")); err != nil {
		t.Fatal(err)
	}
	err := copyTree(context.Background(), src, filepath.Join(root, "again"), &tablespaces{root: filepath.Join(root, "ts2"), original: map[string]string{}})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("a stray symlink: %v, want ErrUnsupported", err)
	}
}
