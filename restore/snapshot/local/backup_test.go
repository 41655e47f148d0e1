package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/firedrill/firedrill/restore/engine"
	"github.com/firedrill/firedrill/restore/snapshot/local"
)

// An engine that backs itself up (mariadb-backup) writes the snapshot's data directory; the
// repository checksums what it wrote, never freezes the database, and always closes the
// connection. A failed backup leaves no snapshot.
func TestCreateWithEngineBackup(t *testing.T) {
	ended := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	backup := func(_ context.Context, dest string) (*engine.Frozen, error) {
		if err := os.MkdirAll(filepath.Join(dest, "shop"), 0o700); err != nil {
			return nil, err
		}
		for name, content := range map[string]string{"ibdata1": "system", "shop/orders.ibd": "pages", "xtrabackup_binlog_info": "binlog.000001\t4\n"} {
			if err := os.WriteFile(filepath.Join(dest, name), []byte(content), 0o600); err != nil {
				return nil, err
			}
		}
		return &engine.Frozen{StartedAt: ended.Add(-time.Second), EndedAt: ended, Attributes: map[string]string{"binlogFile": "binlog.000001"}}, nil
	}
	for _, tc := range []struct {
		name    string
		backup  func(context.Context, string) (*engine.Frozen, error)
		wantErr bool
	}{
		{"backup", backup, false},
		{"failed backup", func(context.Context, string) (*engine.Frozen, error) { return nil, errors.New("mariadb-backup: boom") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := local.New(filepath.Join(t.TempDir(), "repo"), 2)
			repo.Now = func() time.Time { return ended }
			f := &fakeFreezer{}
			meta, err := repo.Create(t.Context(), local.CreateRequest{Target: "shop", Engine: "mariadb", Mode: "online",
				DataDir: t.TempDir(), Freezer: f, Backup: tc.backup, Attributes: map[string]string{"serverVersion": "10.11.19-MariaDB"}})
			if freezes, thaws, closes := f.calls(); freezes != 0 || thaws != 0 || closes != 1 {
				t.Errorf("freezer calls: %d freezes, %d thaws, %d closes; want 0, 0, 1", freezes, thaws, closes)
			}
			if tc.wantErr {
				all, _ := repo.ListAll(t.Context())
				entries, _ := os.ReadDir(repo.Dir)
				if err == nil || len(all) != 0 || len(entries) > 1 {
					t.Fatalf("err = %v; snapshots %v, entries %d", err, all, len(entries))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if meta.Files != 3 || meta.Attributes["binlogFile"] != "binlog.000001" || meta.EngineVersion != "10.11.19-MariaDB" || !meta.TakenAt.Equal(ended) {
				t.Errorf("metadata %+v", meta)
			}
			manifest := readManifest(t, filepath.Join(repo.Path(meta.ID), "manifest.sha256"))
			if want := sha([]byte("pages")); manifest["data/shop/orders.ibd"] != want {
				t.Errorf("manifest of orders.ibd %q, want %q", manifest["data/shop/orders.ibd"], want)
			}
			res, err := repo.Clone(t.Context(), meta.ID, filepath.Join(t.TempDir(), "clone"), nil)
			if err != nil || len(res.Mismatches) != 0 || res.Verified != 3 {
				t.Fatalf("clone: %+v, %v", res, err)
			}
		})
	}
}
