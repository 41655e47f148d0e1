package csidriver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var controllerCapabilities = []csi.ControllerServiceCapability_RPC_Type{
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
	csi.ControllerServiceCapability_RPC_GET_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
	csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	csi.ControllerServiceCapability_RPC_GET_CAPACITY,
}

// ControllerGetCapabilities lists what the controller service implements.
func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	caps := make([]*csi.ControllerServiceCapability, 0, len(controllerCapabilities))
	for _, c := range controllerCapabilities {
		caps = append(caps, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: c}},
		})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// supportedAccessModes are the modes one directory on one node can honour.
var supportedAccessModes = map[csi.VolumeCapability_AccessMode_Mode]bool{
	csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER:        true,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY:   true,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER: true,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:  true,
}

// checkCapability says why a capability cannot be served, or "" when it can.
func checkCapability(c *csi.VolumeCapability) string {
	if c == nil {
		return "volume capability is empty"
	}
	if c.GetMount() == nil {
		if c.GetBlock() != nil {
			return "block access is not supported: volumes are directories"
		}
		return "volume capability has no access type"
	}
	if c.GetAccessMode() == nil {
		return "volume capability has no access mode"
	}
	if !supportedAccessModes[c.GetAccessMode().GetMode()] {
		return fmt.Sprintf("access mode %s is not supported", c.GetAccessMode().GetMode())
	}
	return ""
}

// capacityFor picks the capacity to record for a range, or an error the spec names.
func (d *Driver) capacityFor(r *csi.CapacityRange, minimum int64) (int64, error) {
	req, lim := r.GetRequiredBytes(), r.GetLimitBytes()
	if req < 0 || lim < 0 {
		return 0, status.Error(codes.InvalidArgument, "capacity range must not be negative")
	}
	if lim > 0 && req > lim {
		return 0, status.Errorf(codes.InvalidArgument, "required bytes %d exceed limit bytes %d", req, lim)
	}
	if req > d.opts.MaxCapacity {
		return 0, status.Errorf(codes.OutOfRange, "required bytes %d exceed the maximum volume size %d", req, d.opts.MaxCapacity)
	}
	capacity := req
	switch {
	case capacity == 0 && minimum > 0:
		capacity = minimum // a restore or clone without a size is as large as its source
	case capacity == 0:
		capacity = DefaultCapacity
		if lim > 0 && lim < capacity {
			capacity = lim
		}
	}
	if capacity < minimum {
		if lim > 0 && lim < minimum {
			return 0, status.Errorf(codes.OutOfRange, "limit bytes %d are smaller than the source's %d bytes", lim, minimum)
		}
		capacity = minimum
	}
	return capacity, nil
}

// CreateVolume makes a directory, empty or a copy of a snapshot or another volume.
func (d *Driver) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume capabilities are required")
	}
	for _, c := range req.GetVolumeCapabilities() {
		if why := checkCapability(c); why != "" {
			return nil, status.Error(codes.InvalidArgument, why)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()

	var srcSnap, srcVol string
	switch src := req.GetVolumeContentSource(); {
	case src == nil:
	case src.GetSnapshot() != nil:
		srcSnap = src.GetSnapshot().GetSnapshotId()
	case src.GetVolume() != nil:
		srcVol = src.GetVolume().GetVolumeId()
	default:
		return nil, status.Error(codes.InvalidArgument, "volume content source names neither a snapshot nor a volume")
	}

	// The same name again is the same request retried: answer with what was made, unless
	// the request cannot be the one that made it.
	for _, v := range d.state.Volumes {
		if v.Name != req.GetName() {
			continue
		}
		r := req.GetCapacityRange()
		if v.Capacity < r.GetRequiredBytes() || (r.GetLimitBytes() > 0 && v.Capacity > r.GetLimitBytes()) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with %d bytes, outside the requested range", v.Name, v.Capacity)
		}
		if v.SourceSnapshotID != srcSnap || v.SourceVolumeID != srcVol {
			return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with a different content source", v.Name)
		}
		return &csi.CreateVolumeResponse{Volume: d.csiVolume(v)}, nil
	}

	var srcDir string
	var minimum int64
	if srcSnap != "" {
		s, ok := d.state.Snapshots[srcSnap]
		if !ok {
			return nil, status.Errorf(codes.NotFound, "source snapshot %s does not exist", srcSnap)
		}
		srcDir, minimum = d.snapshotPath(s.ID), s.Size
	}
	if srcVol != "" {
		v, ok := d.state.Volumes[srcVol]
		if !ok {
			return nil, status.Errorf(codes.NotFound, "source volume %s does not exist", srcVol)
		}
		srcDir, minimum = d.volumePath(v.ID), v.Capacity
	}
	capacity, err := d.capacityFor(req.GetCapacityRange(), minimum)
	if err != nil {
		return nil, err
	}

	id, err := newID("vol-")
	if err != nil {
		return nil, err
	}
	dir := d.volumePath(id)
	if srcDir != "" {
		err = d.cloneTree(srcDir, dir, false)
	} else {
		// World-writable like the upstream hostpath driver: pods run as any user, and the
		// kubelet does not apply fsGroup to a driver without fsGroupPolicy File.
		err = d.newEmptyVolume(dir)
	}
	if err != nil {
		_ = d.removeTree(dir)
		return nil, status.Errorf(codes.Internal, "while creating the volume directory: %v", err)
	}
	v := &volume{
		ID: id, Name: req.GetName(), Capacity: capacity,
		SourceSnapshotID: srcSnap, SourceVolumeID: srcVol,
		Parameters: req.GetParameters(), Created: d.now().UTC(), Seq: d.state.seq(),
	}
	d.state.Volumes[id] = v
	if err := d.save(); err != nil {
		delete(d.state.Volumes, id)
		_ = d.removeTree(dir)
		return nil, err
	}
	return &csi.CreateVolumeResponse{Volume: d.csiVolume(v)}, nil
}

func (d *Driver) csiVolume(v *volume) *csi.Volume {
	out := &csi.Volume{VolumeId: v.ID, CapacityBytes: v.Capacity}
	switch {
	case v.SourceSnapshotID != "":
		out.ContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: v.SourceSnapshotID},
		}}
	case v.SourceVolumeID != "":
		out.ContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: v.SourceVolumeID},
		}}
	}
	return out
}

// DeleteVolume removes the directory; a volume that does not exist is already deleted.
func (d *Driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.state.Volumes[req.GetVolumeId()]
	if !ok {
		return &csi.DeleteVolumeResponse{}, nil
	}
	for _, p := range d.state.Publications {
		if p.VolumeID == v.ID {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is still published at %s", v.ID, p.Target)
		}
	}
	if err := d.removeTree(d.volumePath(v.ID)); err != nil {
		return nil, status.Errorf(codes.Internal, "while removing volume %s: %v", v.ID, err)
	}
	delete(d.state.Volumes, v.ID)
	if err := d.save(); err != nil {
		return nil, err
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms the capabilities when every one of them can be served.
func (d *Driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume capabilities are required")
	}
	d.mu.Lock()
	_, ok := d.state.Volumes[req.GetVolumeId()]
	d.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist", req.GetVolumeId())
	}
	for _, c := range req.GetVolumeCapabilities() {
		if why := checkCapability(c); why != "" {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: why}, nil
		}
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
		MutableParameters:  req.GetMutableParameters(),
	}}, nil
}

// page cuts a list ordered by creation for pagination. The token is the position of the next
// entry; an entry deleted between two pages shifts the rest by one, which the spec allows.
func page(n int, token string, maxEntries int32) (start, end int, next string, err error) {
	if maxEntries < 0 {
		return 0, 0, "", status.Error(codes.InvalidArgument, "max_entries must not be negative")
	}
	if token != "" {
		i, perr := strconv.Atoi(token)
		if perr != nil || i < 0 || i > n {
			return 0, 0, "", status.Errorf(codes.Aborted, "starting token %q is not valid", token)
		}
		start = i
	}
	end = n
	if maxEntries > 0 && start+int(maxEntries) < n {
		end = start + int(maxEntries)
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

// ListVolumes lists volumes in creation order.
func (d *Driver) ListVolumes(_ context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	vols := make([]*volume, 0, len(d.state.Volumes))
	for _, v := range d.state.Volumes {
		vols = append(vols, v)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].Seq < vols[j].Seq })
	start, end, next, err := page(len(vols), req.GetStartingToken(), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	resp := &csi.ListVolumesResponse{NextToken: next}
	for _, v := range vols[start:end] {
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{Volume: d.csiVolume(v)})
	}
	return resp, nil
}

// GetCapacity reports the free space of the filesystem under the root.
func (d *Driver) GetCapacity(_ context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	for _, c := range req.GetVolumeCapabilities() {
		if checkCapability(c) != "" {
			return &csi.GetCapacityResponse{}, nil
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(d.opts.Root, &st); err != nil {
		return nil, status.Errorf(codes.Internal, "while reading the free space of %s: %v", d.opts.Root, err)
	}
	return &csi.GetCapacityResponse{
		AvailableCapacity: int64(st.Bavail) * st.Bsize,
		MaximumVolumeSize: wrapperspb.Int64(d.opts.MaxCapacity),
	}, nil
}

// CreateSnapshot copies the volume's directory. The copy is complete when the call returns, so
// the snapshot is ready to use at once; its size is the volume's capacity, so that a volume
// restored from it is at least as large as the original (Kubernetes' restoreSize).
func (d *Driver) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if req.GetSourceVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "source volume ID is required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.state.Snapshots {
		if s.Name != req.GetName() {
			continue
		}
		if s.SourceVolumeID != req.GetSourceVolumeId() {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %s exists for volume %s", s.Name, s.SourceVolumeID)
		}
		return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(s)}, nil
	}
	v, ok := d.state.Volumes[req.GetSourceVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "source volume %s does not exist", req.GetSourceVolumeId())
	}
	id, err := newID("snap-")
	if err != nil {
		return nil, err
	}
	dir := d.snapshotPath(id)
	if err := d.cloneTree(d.volumePath(v.ID), dir, true); err != nil {
		_ = d.removeTree(dir)
		return nil, status.Errorf(codes.Internal, "while copying volume %s: %v", v.ID, err)
	}
	s := &snapshot{
		ID: id, Name: req.GetName(), SourceVolumeID: v.ID, Size: v.Capacity,
		Created: d.now().UTC(), Seq: d.state.seq(),
	}
	d.state.Snapshots[id] = s
	if err := d.save(); err != nil {
		delete(d.state.Snapshots, id)
		_ = d.removeTree(dir)
		return nil, err
	}
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(s)}, nil
}

func csiSnapshot(s *snapshot) *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId: s.ID, SourceVolumeId: s.SourceVolumeID, SizeBytes: s.Size,
		CreationTime: timestamppb.New(s.Created), ReadyToUse: true,
	}
}

// DeleteSnapshot removes the copy; a snapshot that does not exist is already deleted.
func (d *Driver) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot ID is required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.state.Snapshots[req.GetSnapshotId()]
	if !ok {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err := d.removeTree(d.snapshotPath(s.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "while removing snapshot %s: %v", s.ID, err)
	}
	delete(d.state.Snapshots, s.ID)
	if err := d.save(); err != nil {
		return nil, err
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// ListSnapshots lists snapshots in creation order, filtered by snapshot ID or source volume.
// An ID that matches nothing gives an empty list, not an error, as the spec says.
func (d *Driver) ListSnapshots(_ context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	snaps := make([]*snapshot, 0, len(d.state.Snapshots))
	for _, s := range d.state.Snapshots {
		if id := req.GetSnapshotId(); id != "" && s.ID != id {
			continue
		}
		if src := req.GetSourceVolumeId(); src != "" && s.SourceVolumeID != src {
			continue
		}
		snaps = append(snaps, s)
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].Seq < snaps[j].Seq })
	start, end, next, err := page(len(snaps), req.GetStartingToken(), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	resp := &csi.ListSnapshotsResponse{NextToken: next}
	for _, s := range snaps[start:end] {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: csiSnapshot(s)})
	}
	return resp, nil
}

// GetSnapshot returns one snapshot by ID.
func (d *Driver) GetSnapshot(_ context.Context, req *csi.GetSnapshotRequest) (*csi.GetSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot ID is required")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.state.Snapshots[req.GetSnapshotId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "snapshot %s does not exist", req.GetSnapshotId())
	}
	return &csi.GetSnapshotResponse{Snapshot: csiSnapshot(s)}, nil
}
