package csidriver_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/firedrill/firedrill/integration/csidriver"
)

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func newDriver(t *testing.T, root string) *csidriver.Driver {
	t.Helper()
	d, err := csidriver.New(csidriver.Options{Root: root, NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A restarted driver keeps its volumes and snapshots, answers a retried CreateVolume with the
// same volume, and restores a snapshot with the files' content, mode and owner intact (what a
// PostgreSQL data directory needs: 0700/0600 and the postgres user).
func TestRestartKeepsStateAndRestoresSnapshot(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	d := newDriver(t, root)
	create := &csi.CreateVolumeRequest{
		Name:               "pgdata",
		CapacityRange:      &csi.CapacityRange{RequiredBytes: 1 << 20},
		VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)},
	}
	vol, err := d.CreateVolume(ctx, create)
	if err != nil {
		t.Fatal(err)
	}
	volID := vol.GetVolume().GetVolumeId()
	dataDir := filepath.Join(d.VolumePath(volID), "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dataDir, "PG_VERSION")
	if err := os.WriteFile(file, []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantUID := os.Geteuid()
	if wantUID == 0 {
		wantUID = 4242
		if err := os.Lchown(file, wantUID, wantUID); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s1", SourceVolumeId: volID})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.GetSnapshot().GetReadyToUse() || snap.GetSnapshot().GetSizeBytes() != 1<<20 {
		t.Fatalf("snapshot = %v, want ready with the volume's 1 MiB", snap.GetSnapshot())
	}

	d = newDriver(t, root) // the restart
	again, err := d.CreateVolume(ctx, create)
	if err != nil || again.GetVolume().GetVolumeId() != volID {
		t.Fatalf("retried CreateVolume after restart = %v, %v; want volume %s", again, err, volID)
	}
	snaps, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: volID})
	if err != nil || len(snaps.GetEntries()) != 1 {
		t.Fatalf("ListSnapshots after restart = %v, %v; want the one snapshot", snaps, err)
	}
	restored, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               "restored",
		VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)},
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshot().GetSnapshotId()},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := restored.GetVolume().GetCapacityBytes(); got != 1<<20 {
		t.Errorf("restored capacity = %d, want at least the snapshot's %d", got, 1<<20)
	}
	// The snapshot is a copy: changing the source afterwards must not reach the restore.
	if err := os.WriteFile(file, []byte("16\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rfile := filepath.Join(d.VolumePath(restored.GetVolume().GetVolumeId()), "data", "PG_VERSION")
	tests := []struct {
		name string
		path string
		mode os.FileMode
	}{
		{"data directory", filepath.Dir(rfile), os.ModeDir | 0o700},
		{"file", rfile, 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st unix.Stat_t
			if err := unix.Lstat(tt.path, &st); err != nil {
				t.Fatal(err)
			}
			info, _ := os.Lstat(tt.path)
			if info.Mode() != tt.mode {
				t.Errorf("mode = %v, want %v", info.Mode(), tt.mode)
			}
			if tt.mode.IsRegular() && int(st.Uid) != wantUID {
				t.Errorf("owner = %d, want %d", st.Uid, wantUID)
			}
		})
	}
	if b, err := os.ReadFile(rfile); err != nil || string(b) != "15\n" {
		t.Errorf("restored PG_VERSION = %q, %v; want the content at snapshot time", b, err)
	}
}

// A read-only publication refuses writes, and unpublishing removes the target.
func TestPublishReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	ctx := t.Context()
	d := newDriver(t, t.TempDir())
	c := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	vol, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "v", VolumeCapabilities: []*csi.VolumeCapability{c}})
	if err != nil {
		t.Fatal(err)
	}
	id := vol.GetVolume().GetVolumeId()
	target := filepath.Join(t.TempDir(), "target")
	if _, err := d.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: target, VolumeCapability: c, Readonly: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); !errors.Is(err, unix.EROFS) {
		t.Errorf("write to a read-only publication: %v, want EROFS", err)
	}
	if _, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target after unpublish: %v, want it removed", err)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Errorf("DeleteVolume after unpublish: %v", err)
	}
}
