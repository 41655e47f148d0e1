package csidriver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeGetCapabilities: no staging (a directory needs none); SINGLE_NODE_MULTI_WRITER so that
// Kubernetes' ReadWriteOncePod maps to SINGLE_NODE_SINGLE_WRITER, which NodePublishVolume enforces.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{Capabilities: []*csi.NodeServiceCapability{{
		Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{
			Type: csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
		}},
	}}}, nil
}

// NodeGetInfo names the node; there is no topology.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.opts.NodeID, MaxVolumesPerNode: d.opts.MaxVolumesPerNode}, nil
}

// sameDir reports whether a and b are the same directory: after a bind mount the target's root
// is the volume directory's inode, so this tells a published target without parsing mountinfo.
func sameDir(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// NodePublishVolume bind-mounts the volume's directory onto the target path (read-only through a
// remount when asked). Publishing the same volume at the same target again is a no-op.
func (d *Driver) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	case req.GetTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	case req.GetVolumeCapability() == nil:
		return nil, status.Error(codes.InvalidArgument, "volume capability is required")
	}
	if why := checkCapability(req.GetVolumeCapability()); why != "" {
		return nil, status.Error(codes.InvalidArgument, why)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.state.Volumes[req.GetVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist", req.GetVolumeId())
	}
	target := req.GetTargetPath()
	mode := req.GetVolumeCapability().GetAccessMode().GetMode()
	readOnly := req.GetReadonly() || mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY

	if p, ok := d.state.Publications[target]; ok {
		mounted, err := sameDir(target, d.volumePath(p.VolumeID))
		if err != nil {
			return nil, status.Errorf(codes.Internal, "while checking %s: %v", target, err)
		}
		switch {
		case mounted && p.VolumeID == v.ID && p.ReadOnly == readOnly && p.Mode == mode.String():
			return &csi.NodePublishVolumeResponse{}, nil
		case mounted:
			return nil, status.Errorf(codes.AlreadyExists, "target %s is already published with volume %s (read-only %t, %s)", target, p.VolumeID, p.ReadOnly, p.Mode)
		default:
			delete(d.state.Publications, target) // unmounted behind our back (e.g. a reboot)
		}
	}
	for _, p := range d.state.Publications {
		if p.VolumeID == v.ID && (mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER ||
			p.Mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER.String()) {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is published at %s for a single writer", v.ID, p.Target)
		}
	}

	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "while creating the target %s: %v", target, err)
	}
	if err := bindMount(d.volumePath(v.ID), target, readOnly); err != nil {
		return nil, status.Errorf(codes.Internal, "while publishing volume %s: %v", v.ID, err)
	}
	d.state.Publications[target] = &publication{VolumeID: v.ID, Target: target, ReadOnly: readOnly, Mode: mode.String()}
	if err := d.save(); err != nil {
		_ = unix.Unmount(target, 0)
		delete(d.state.Publications, target)
		return nil, err
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

func bindMount(src, target string, readOnly bool) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("while bind-mounting %s on %s: %w", src, target, err)
	}
	if !readOnly {
		return nil
	}
	// MS_RDONLY is ignored on the first bind mount; only a remount makes it read-only.
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		_ = unix.Unmount(target, 0)
		return fmt.Errorf("while making %s read-only: %w", target, err)
	}
	return nil
}

// NodeUnpublishVolume unmounts the target and removes it, as the spec asks of the SP that
// created it. A target that is already gone is already unpublished.
func (d *Driver) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	case req.GetTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if _, ok := d.state.Volumes[id]; !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist", id)
	}
	// Unmount while the target still shows the volume: a retried publish may have stacked mounts.
	for {
		mounted, err := sameDir(target, d.volumePath(id))
		if err != nil {
			return nil, status.Errorf(codes.Internal, "while checking %s: %v", target, err)
		}
		if !mounted {
			break
		}
		if err := unix.Unmount(target, 0); err != nil {
			return nil, status.Errorf(codes.Internal, "while unmounting %s: %v", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "while removing the target %s: %v", target, err)
	}
	if p, ok := d.state.Publications[target]; ok && p.VolumeID == id {
		delete(d.state.Publications, target)
		if err := d.save(); err != nil {
			return nil, err
		}
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}
