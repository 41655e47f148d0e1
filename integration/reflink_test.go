package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/firedrill/firedrill/integration/harness"
)

// On a filesystem with copy-on-write clones (btrfs, on a loop device made by the test), the
// snapshot and the drill's scratch copy are reflinks: they cost almost no space, and the drill
// still verifies every file against the manifest and passes. Needs root (mount) and
// btrfs-progs (`make setup` installs it).
func TestSnapshotAndDrillUseReflinks(t *testing.T) {
	harness.Integration(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a loop filesystem needs root")
	}
	mkfs, err := exec.LookPath("mkfs.btrfs")
	if err != nil {
		harness.Missing(t, "mkfs.btrfs", err.Error(), "run `make setup` (installs btrfs-progs)")
	}
	img := filepath.Join(harness.TempDir(t), "btrfs.img")
	mnt := filepath.Join(harness.TempDir(t), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(mustCreate(t, img), 1<<30); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a loop filesystem here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	if err := os.Chmod(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	// Production, the repository and the scratch directory all live on the btrfs filesystem.
	t.Setenv("TMPDIR", mnt)
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := pg.Exec(ctx, "postgres", "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	tg, cfg := newTarget(t, pg, "")
	free := func() int64 {
		_ = exec.Command("sync").Run()
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil {
			t.Fatal(err)
		}
		return int64(st.Bavail) * st.Bsize
	}
	before := free()
	id := snapshotID(t, ctx, cfg)
	used := before - free()
	var size int64
	_ = filepath.Walk(filepath.Join(tg.repo, id, "data", "base"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			size += fi.Size()
		}
		return nil
	})
	t.Logf("snapshot: %d MiB of relation files, %d MiB of free space used", size>>20, used>>20)
	if size < 40<<20 {
		t.Fatalf("the dataset is too small (%d bytes) to tell clones from copies", size)
	}
	if used > size/2 {
		t.Errorf("the snapshot used %d MiB of space for %d MiB of relation files: not reflinked", used>>20, size>>20)
	}
	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	if d := parseDrill(t, r); r.code != 0 || d.Status != "pass" {
		t.Fatalf("drill on btrfs: exit %d status %s failed %v: %s", r.code, d.Status, d.failed(), d.Error)
	} else if st, msg := d.check("snapshot-integrity"); st != "pass" {
		t.Errorf("snapshot-integrity %s: %s", st, msg)
	}
}

func mustCreate(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}
