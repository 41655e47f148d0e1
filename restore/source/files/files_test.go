package files

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	enginered "github.com/firedrill/firedrill/restore/engine/redis"
	"github.com/firedrill/firedrill/restore/snapshot"
)

var base = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// write creates path with content and sets its modification time to base+age.
func write(t *testing.T, path string, content []byte, at time.Duration) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	touch(t, path, at)
}

func touch(t *testing.T, path string, at time.Duration) {
	t.Helper()
	if err := os.Chtimes(path, base.Add(at), base.Add(at)); err != nil {
		t.Fatal(err)
	}
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ids(ms []snapshot.Metadata) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// mariadbBackup makes a backup directory whose xtrabackup_checkpoints says typ.
func mariadbBackup(t *testing.T, dir, typ string, at time.Duration) {
	t.Helper()
	write(t, filepath.Join(dir, "ibdata1"), []byte("pages"), at)
	write(t, filepath.Join(dir, "shop", "orders.ibd"), []byte("orders"), at)
	write(t, filepath.Join(dir, "xtrabackup_info"), []byte("tool_name = mariadb-backup\nserver_version = 10.11.19-MariaDB\n"), at)
	write(t, filepath.Join(dir, checkpointsFile), []byte("backup_type = "+typ+"\nfrom_lsn = 0\nto_lsn = 42\n"), at)
}

func TestList(t *testing.T) {
	rdbDir := t.TempDir()
	write(t, filepath.Join(rdbDir, "dump-1.rdb"), []byte("REDIS0011 old"), 1*time.Hour)
	write(t, filepath.Join(rdbDir, "dump-3.rdb.gz"), gz(t, []byte("REDIS0011 newest")), 3*time.Hour)
	write(t, filepath.Join(rdbDir, "dump-3.rdb.gz.sha256"), []byte("x  dump-3.rdb.gz\n"), 4*time.Hour)
	write(t, filepath.Join(rdbDir, "aof-2", "appendonly.aof.manifest"), []byte("file appendonly.aof.1.base.rdb seq 1 type b\n"), 2*time.Hour)
	write(t, filepath.Join(rdbDir, "notes.txt"), []byte("not a backup"), 5*time.Hour)
	write(t, filepath.Join(rdbDir, "empty", "README"), []byte("not an AOF"), 5*time.Hour)

	myDir := t.TempDir()
	mariadbBackup(t, filepath.Join(myDir, "full-1"), "full-backuped", 1*time.Hour)
	mariadbBackup(t, filepath.Join(myDir, "full-2"), "full-prepared", 2*time.Hour)
	mariadbBackup(t, filepath.Join(myDir, "inc-3"), "incremental", 3*time.Hour)
	write(t, filepath.Join(myDir, "stray", "ibdata1"), []byte("x"), 4*time.Hour)

	for _, tc := range []struct {
		name string
		src  Source
		want []string
	}{
		{"rdb newest first", Source{Kind: KindRDB, Dir: rdbDir}, []string{"dump-3.rdb.gz", "aof-2", "dump-1.rdb"}},
		{"rdb pattern", Source{Kind: KindRDB, Dir: rdbDir, Pattern: "dump-*"}, []string{"dump-3.rdb.gz", "dump-1.rdb"}},
		{"mariadb-backup skips incremental", Source{Kind: KindMariaDBBackup, Dir: myDir}, []string{"full-2", "full-1"}},
		{"mariadb-backup pattern", Source{Kind: KindMariaDBBackup, Dir: myDir, Pattern: "*-1"}, []string{"full-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			tc.src.Log = slog.New(slog.NewTextHandler(&logs, nil))
			got, err := tc.src.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Fatalf("List = %v, want %v", ids(got), tc.want)
			}
			for _, m := range got {
				if m.Driver != Driver || m.SizeBytes <= 0 || m.TakenAt.IsZero() {
					t.Errorf("%s: metadata %+v", m.ID, m)
				}
			}
			if tc.src.Kind == KindMariaDBBackup && tc.src.Pattern == "" && !strings.Contains(logs.String(), "incremental") {
				t.Errorf("no log line for the incremental backup: %q", logs.String())
			}
		})
	}

	t.Run("attributes", func(t *testing.T) {
		s := Source{Kind: KindRDB, Dir: rdbDir, Target: "cache", Engine: "redis"}
		m, err := s.Get(context.Background(), "dump-3.rdb.gz")
		if err != nil {
			t.Fatal(err)
		}
		if m.Attributes[enginered.AttrRDBFile] != "dump-3.rdb" || m.Attributes[AttrCompression] != "gzip" || m.Target != "cache" || m.Engine != "redis" {
			t.Errorf("metadata %+v", m)
		}
		if !m.TakenAt.Equal(base.Add(3 * time.Hour)) {
			t.Errorf("TakenAt = %s, want the RDB's own mtime", m.TakenAt)
		}
		my := Source{Kind: KindMariaDBBackup, Dir: myDir}
		m, err = my.Get(context.Background(), "full-1")
		if err != nil {
			t.Fatal(err)
		}
		if m.EngineVersion != "10.11.19-MariaDB" || m.Attributes[AttrBackupType] != "full-backuped" {
			t.Errorf("metadata %+v", m)
		}
	})

	t.Run("get refuses what is not a backup", func(t *testing.T) {
		my := Source{Kind: KindMariaDBBackup, Dir: myDir}
		for _, id := range []string{"inc-3", "stray", "absent", "../x", ""} {
			if _, err := my.Get(context.Background(), id); !errors.Is(err, snapshot.ErrNotFound) {
				t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
			}
		}
	})

	t.Run("absent directory", func(t *testing.T) {
		s := Source{Kind: KindRDB, Dir: filepath.Join(rdbDir, "nope")}
		if _, err := s.List(context.Background()); err == nil || !strings.Contains(err.Error(), "while listing backups") {
			t.Errorf("List = %v, want an error saying what was listed", err)
		}
	})
}

func materialize(t *testing.T, s *Source, id string) (*drill.Copy, string, error) {
	t.Helper()
	m, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	var status []string
	cp, err := s.Materialize(context.Background(), drill.MaterializeRequest{Snapshot: m, ScratchDir: scratch, Status: func(s string) { status = append(status, s) }})
	if err == nil && len(status) == 0 {
		t.Error("no progress reported")
	}
	return cp, scratch, err
}

func TestMaterialize(t *testing.T) {
	rdb := []byte("REDIS0011 some keys")
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the entry's id
		status  checks.Status
		message string
		files   []string // relative to clone/data, with content checked for rdb
	}{
		{"rdb with matching sidecar", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "dump-1.rdb"), rdb, 0)
			write(t, filepath.Join(dir, "dump-1.rdb.sha256"), []byte(sum(rdb)+"  dump-1.rdb\n"), 0)
			return "dump-1.rdb"
		}, checks.Pass, "matches its sidecar", []string{"dump-1.rdb"}},
		{"rdb without sidecar", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "dump-1.rdb"), rdb, 0)
			return "dump-1.rdb"
		}, checks.Pass, "no checksum sidecar: size and readability only", []string{"dump-1.rdb"}},
		{"rdb sidecar mismatch", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "dump-1.rdb"), rdb, 0)
			write(t, filepath.Join(dir, "dump-1.rdb.sha256"), []byte(sum([]byte("other"))+"  dump-1.rdb\n"), 0)
			return "dump-1.rdb"
		}, checks.Fail, "but its sidecar says", nil},
		{"gzipped rdb decompressed, sidecar of the gz", func(t *testing.T, dir string) string {
			z := gz(t, rdb)
			write(t, filepath.Join(dir, "dump-1.rdb.gz"), z, 0)
			write(t, filepath.Join(dir, "dump-1.rdb.gz.sha256"), []byte(sum(z)+" *dump-1.rdb.gz\n"), 0)
			return "dump-1.rdb.gz"
		}, checks.Pass, "matches its sidecar", []string{"dump-1.rdb"}},
		{"truncated gzip is damage", func(t *testing.T, dir string) string {
			z := gz(t, bytes.Repeat(rdb, 1000))
			write(t, filepath.Join(dir, "dump-1.rdb.gz"), z[:len(z)/2], 0)
			return "dump-1.rdb.gz"
		}, checks.Fail, "does not decompress", nil},
		{"aof directory", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "aof-1", "appendonly.aof.manifest"), []byte("file appendonly.aof.1.base.rdb seq 1 type b\n"), 0)
			write(t, filepath.Join(dir, "aof-1", "appendonly.aof.1.base.rdb"), rdb, 0)
			return "aof-1"
		}, checks.Pass, "size and readability only", []string{"appendonlydir/appendonly.aof.manifest", "appendonlydir/appendonly.aof.1.base.rdb"}},
		{"mariadb-backup with directory sidecar", func(t *testing.T, dir string) string {
			b := filepath.Join(dir, "full-1")
			mariadbBackup(t, b, "full-backuped", 0)
			write(t, filepath.Join(dir, "full-1.sha256"), []byte(sum([]byte("pages"))+"  ./ibdata1\n"+sum([]byte("orders"))+"  shop/orders.ibd\n"), 0)
			return "full-1"
		}, checks.Pass, "2 file(s) match", []string{"ibdata1", "shop/orders.ibd", checkpointsFile}},
		{"mariadb-backup directory sidecar mismatch", func(t *testing.T, dir string) string {
			b := filepath.Join(dir, "full-1")
			mariadbBackup(t, b, "full-backuped", 0)
			write(t, filepath.Join(dir, "full-1.sha256"), []byte(sum([]byte("pages"))+"  ibdata1\n"+sum([]byte("other"))+"  shop/orders.ibd\n"+sum(nil)+"  shop/gone.ibd\n"), 0)
			return "full-1"
		}, checks.Fail, "2 file(s) differ", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			id := tc.setup(t, dir)
			kind := KindRDB
			if strings.HasPrefix(id, "full") {
				kind = KindMariaDBBackup
			}
			s := &Source{Kind: kind, Dir: dir}
			cp, scratch, err := materialize(t, s, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(cp.Findings) != 1 {
				t.Fatalf("findings %+v", cp.Findings)
			}
			f := cp.Findings[0]
			if f.Check != drill.SnapshotIntegrityName || f.Status != tc.status || !strings.Contains(f.Message, tc.message) {
				t.Fatalf("finding %s %s %q, want %s containing %q", f.Check, f.Status, f.Message, tc.status, tc.message)
			}
			if cp.Damaged != (tc.status == checks.Fail) {
				t.Errorf("Damaged = %v with a %s finding", cp.Damaged, f.Status)
			}
			if want := filepath.Join(scratch, "clone", "data"); cp.DataDir != want {
				t.Errorf("DataDir = %s, want %s", cp.DataDir, want)
			}
			for _, rel := range tc.files {
				b, err := os.ReadFile(filepath.Join(cp.DataDir, rel))
				if err != nil {
					t.Errorf("the copy lacks %s: %v", rel, err)
				} else if strings.HasSuffix(rel, ".rdb") && !bytes.Equal(b, rdb) {
					t.Errorf("%s holds %q, want %q", rel, b, rdb)
				}
			}
		})
	}
}

func TestMaterializeErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "dump-1.rdb"), []byte("REDIS0011"), 0)
	s := &Source{Kind: KindRDB, Dir: dir}
	m, err := s.Get(context.Background(), "dump-1.rdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("absent when copied", func(t *testing.T) {
		if err := os.Rename(filepath.Join(dir, "dump-1.rdb"), filepath.Join(dir, "moved")); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(filepath.Join(dir, "moved"), filepath.Join(dir, "dump-1.rdb"))
		_, err := s.Materialize(context.Background(), drill.MaterializeRequest{Snapshot: m, ScratchDir: t.TempDir(), Status: func(string) {}})
		if err == nil || !strings.Contains(err.Error(), "while opening backup file") {
			t.Errorf("Materialize = %v, want an error saying what was opened", err)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads a mode 000 file")
		}
		p := filepath.Join(dir, "dump-1.rdb")
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(p, 0o644)
		_, err := s.Materialize(context.Background(), drill.MaterializeRequest{Snapshot: m, ScratchDir: t.TempDir(), Status: func(string) {}})
		if err == nil || !strings.Contains(err.Error(), "dump-1.rdb") {
			t.Errorf("Materialize = %v, want an error naming the file", err)
		}
	})
	t.Run("truncated while copying", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "big.rdb")
		write(t, p, bytes.Repeat([]byte("x"), 3<<20), 0)
		// The first progress report (after the first read) cuts the file short under the copy.
		cut := false
		c := &copier{ctx: context.Background(), status: func(string) {
			if !cut {
				cut = true
				if err := os.Truncate(p, 1<<20); err != nil {
					t.Error(err)
				}
			}
		}}
		_, _, _, err := c.copyOne(p, filepath.Join(t.TempDir(), "out"), false)
		if err == nil || !strings.Contains(err.Error(), "truncated while being copied") {
			t.Errorf("copyOne = %v, want the truncation reported", err)
		}
	})
}
