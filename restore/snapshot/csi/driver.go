package csi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotv1client "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/typed/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/firedrill/firedrill/restore/engine"
	_ "github.com/firedrill/firedrill/restore/engine/builtin" // engine.InBackupMode needs the engines registered
	"github.com/firedrill/firedrill/restore/snapshot"
)

// DriverName is recorded in snapshot metadata.
const DriverName = "csi"

// Labels every VolumeSnapshot firedrill creates carries.
const (
	LabelManagedBy     = "app.kubernetes.io/managed-by"
	ManagedByValue     = "firedrill"
	LabelTarget        = "firedrill.io/target"
	LabelEngine        = "firedrill.io/engine"
	LabelEngineVersion = "firedrill.io/engine-version"
	LabelMode          = "firedrill.io/mode"
	LabelBatchID       = "firedrill.io/batch-id"
	LabelSnapshotID    = "firedrill.io/snapshot-id"
	LabelVolume        = "firedrill.io/volume"
)

// Annotations set after the thaw, with what the engine recorded under the freeze.
const (
	AnnBackupLabel    = "firedrill.io/backup-label"   // base64
	AnnTablespaceMap  = "firedrill.io/tablespace-map" // base64
	AnnStartLSN       = "firedrill.io/start-lsn"
	AnnStopLSN        = "firedrill.io/stop-lsn"
	AnnTimeline       = "firedrill.io/timeline"
	AnnBinlogFile     = "firedrill.io/binlog-file"
	AnnBinlogPosition = "firedrill.io/binlog-position"
	AnnGTID           = "firedrill.io/gtid"
	AnnEngineVersion  = "firedrill.io/engine-version"
	AnnFrozenSeconds  = "firedrill.io/frozen-seconds"
	AnnFrozenAt       = "firedrill.io/frozen-at"
	AnnThawedAt       = "firedrill.io/thawed-at"
	// AnnMetadata is the snapshot's metadata as JSON, written on the data volume's
	// VolumeSnapshot last: a snapshot without it is not complete.
	AnnMetadata = "firedrill.io/metadata"
)

// Volume roles.
const (
	RoleData = "data"
	RoleWAL  = "wal"
)

var (
	// ErrSnapshotFailed means the storage reported an error on a VolumeSnapshot (status.error).
	ErrSnapshotFailed = errors.New("VolumeSnapshot failed")
	// ErrNotReady means a VolumeSnapshot was cut but did not become readyToUse in time.
	ErrNotReady = errors.New("VolumeSnapshot did not become ready in time")
)

// API is what the driver uses of the external-snapshotter clientset:
// clientset.SnapshotV1() satisfies it.
type API interface {
	VolumeSnapshots(namespace string) snapshotv1client.VolumeSnapshotInterface
}

// Driver takes and lists CSI snapshots in one namespace.
type Driver struct {
	API       API
	Namespace string
	ClassName string
	// ReadyTimeout bounds the wait for readyToUse after the cut (default 10 min).
	ReadyTimeout time.Duration
	// Poll is the first interval between status reads; it doubles up to MaxPoll (default 1 s)
	// while waiting for readyToUse, and up to 50 ms while the database is frozen.
	Poll, MaxPoll time.Duration
	// Clock is what the driver waits on (the polls, readyTimeout) and reads the time from when
	// Now is nil; nil means the real clock. Tests pass a fake one and never sleep.
	Clock clock.Clock
	Now   func() time.Time
	// Groups, when set, lets Delete delete a VolumeGroupSnapshot once the last of its members
	// (from several targets) is deleted: clientset.GroupsnapshotV1() satisfies it.
	Groups GroupAPI
}

// PVC is one volume to snapshot.
type PVC struct {
	Role string
	Name string
}

// CreateRequest describes a snapshot to take.
type CreateRequest struct {
	Target  string
	Engine  string
	Mode    string
	BatchID string
	// Volumes are snapshotted in one freeze; the first is the data volume.
	Volumes []PVC
	// Freezer makes the cut consistent; Close is called on every path.
	Freezer    engine.Freezer
	Attributes map[string]string
	Status     func(string)
}

func (d *Driver) now() time.Time {
	if d.Now == nil {
		return d.clock().Now()
	}
	return d.Now()
}

func (d *Driver) clock() clock.Clock {
	if d.Clock == nil {
		return clock.RealClock{}
	}
	return d.Clock
}

// Create freezes, cuts one VolumeSnapshot per volume, thaws as soon as every cut is reported,
// annotates, and waits for readyToUse. On any failure or cancellation the database is thawed
// first, then the VolumeSnapshots created so far are deleted.
func (d *Driver) Create(ctx context.Context, req CreateRequest) (_ *snapshot.Metadata, err error) {
	status := req.Status
	if status == nil {
		status = func(string) {}
	}
	if len(req.Volumes) == 0 {
		return nil, release(ctx, req.Freezer, errors.New("while taking a csi snapshot: no volume to snapshot"))
	}
	client := d.API.VolumeSnapshots(d.Namespace)
	started := d.now()
	id := newID(started)
	batch := req.BatchID
	if batch == "" {
		batch = id
	}
	var created []string
	defer func() {
		if err == nil {
			return
		}
		// Thaw first: the database must not wait for API calls that may hang.
		err = release(ctx, req.Freezer, err)
		if derr := deleteAll(ctx, client, created); derr != nil {
			err = fmt.Errorf("%w (and the partial snapshot could not be deleted: %w)", err, derr)
		}
	}()

	labels := map[string]string{
		LabelManagedBy: ManagedByValue, LabelTarget: req.Target, LabelEngine: req.Engine,
		LabelMode: req.Mode, LabelBatchID: batch, LabelSnapshotID: id,
	}
	if v := LabelValue(req.Attributes["serverVersion"]); v != "" {
		labels[LabelEngineVersion] = v
	}

	// In backup mode (PostgreSQL online) the data files may be cut at any moment between
	// pg_backup_start and pg_backup_stop, but recovery must replay the WAL up to the backup-end
	// record that pg_backup_stop writes: a snapshot of pg_wal cut while the backup is still in
	// progress can never recover ("WAL ends before end of online backup") unless an archive
	// supplies the rest. So the volume holding pg_wal (the WAL volume, else the data volume
	// itself) is cut again right after pg_backup_stop as the "wal" volume, as pg_basebackup
	// -X fetch copies the WAL last; the drill mounts that copy's pg_wal over the data copy's.
	frozenVols, afterVols := req.Volumes, []PVC(nil)
	if engine.InBackupMode(req.Engine, req.Mode) {
		frozenVols = nil
		for _, v := range req.Volumes {
			if v.Role == RoleWAL {
				afterVols = append(afterVols, v)
			} else {
				frozenVols = append(frozenVols, v)
			}
		}
		if len(afterVols) == 0 {
			afterVols = []PVC{{Role: RoleWAL, Name: req.Volumes[0].Name}}
		}
	}
	vols := append(append([]PVC(nil), frozenVols...), afterVols...)
	cutAll := func(which []PVC) ([]*snapshotv1.VolumeSnapshot, error) {
		first := len(created)
		for _, v := range which {
			vs := &snapshotv1.VolumeSnapshot{
				ObjectMeta: metav1.ObjectMeta{
					Name:        VolumeSnapshotName(req.Target, id, v.Role),
					Namespace:   d.Namespace,
					Labels:      with(labels, LabelVolume, v.Role),
					Annotations: map[string]string{AnnEngineVersion: req.Attributes["serverVersion"]},
				},
				Spec: snapshotv1.VolumeSnapshotSpec{
					Source:                  snapshotv1.VolumeSnapshotSource{PersistentVolumeClaimName: &v.Name},
					VolumeSnapshotClassName: &d.ClassName,
				},
			}
			status(fmt.Sprintf("creating VolumeSnapshot %s of PVC %s", vs.Name, v.Name))
			if _, err := client.Create(ctx, vs, metav1.CreateOptions{}); err != nil {
				return nil, fmt.Errorf("while creating VolumeSnapshot %s/%s of PVC %s: %w", d.Namespace, vs.Name, v.Name, err)
			}
			created = append(created, vs.Name)
		}
		status("waiting for the storage to cut the snapshot (status.creationTime)")
		cuts, err := d.waitAll(ctx, client, created[first:], min(d.maxPoll(), 50*time.Millisecond), func(vs *snapshotv1.VolumeSnapshot) bool {
			return vs.Status != nil && vs.Status.CreationTime != nil
		})
		if err != nil {
			return nil, fmt.Errorf("while waiting for the cut: %w", err)
		}
		return cuts, nil
	}

	status("freezing " + req.Engine)
	if err := req.Freezer.Freeze(ctx); err != nil {
		return nil, err
	}
	frozenAt := d.now()
	cuts, err := cutAll(frozenVols)
	if err != nil {
		return nil, err
	}
	status("thawing " + req.Engine)
	frozen, err := req.Freezer.Thaw(ctx)
	if err != nil {
		return nil, err
	}
	thawedAt := d.now()
	if len(afterVols) > 0 {
		walCuts, err := cutAll(afterVols)
		if err != nil {
			return nil, fmt.Errorf("while cutting the WAL after the backup's end: %w", err)
		}
		cuts = append(cuts, walCuts...)
	}

	attrs := map[string]string{}
	for k, v := range req.Attributes {
		attrs[k] = v
	}
	for k, v := range frozen.Attributes {
		attrs[k] = v
	}
	meta := &snapshot.Metadata{
		ID: id, Target: req.Target, Engine: req.Engine, EngineVersion: attrs["serverVersion"], Mode: req.Mode,
		Driver: DriverName, BatchID: req.BatchID, StartedAt: started.UTC(),
		FrozenSeconds: frozen.Duration().Seconds(),
		StartLSN:      attrs["startLSN"], StopLSN: attrs["stopLSN"],
		Attributes: attrs, Namespace: d.Namespace, EngineFiles: frozen.Files,
	}
	fmt.Sscan(attrs["timeline"], &meta.Timeline)
	// The recovery point: the latest cut of the storage, which every volume contains.
	for i, v := range vols {
		cut := cuts[i].Status.CreationTime.Time.UTC()
		if cut.After(meta.TakenAt) {
			meta.TakenAt = cut
		}
		meta.Volumes = append(meta.Volumes, snapshot.Volume{Role: v.Role, PVC: v.Name, VolumeSnapshot: created[i], CutAt: cut})
	}
	if engine.InBackupMode(req.Engine, req.Mode) && !frozen.EndedAt.IsZero() {
		// A backup (PostgreSQL online) is consistent only once replayed to its end (stop LSN).
		meta.TakenAt = frozen.EndedAt.UTC()
	}

	ann := annotations(frozen, attrs, frozenAt, thawedAt)
	for _, name := range created {
		if err := patchAnnotations(ctx, client, name, ann); err != nil {
			return nil, err
		}
	}

	status("waiting for the snapshot to become ready to use")
	// The deadline is read on the driver's clock; the context's timeout is the backstop for an
	// API call that hangs past it.
	rctx, cancel := context.WithTimeoutCause(ctx, d.readyTimeout(), ErrNotReady)
	defer cancel()
	deadline := d.clock().Now().Add(d.readyTimeout())
	ready, err := d.waitUntil(rctx, client, created, d.maxPoll(), deadline, func(vs *snapshotv1.VolumeSnapshot) bool {
		return vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse
	})
	if err != nil {
		if errors.Is(err, ErrNotReady) && ctx.Err() == nil {
			return nil, fmt.Errorf("%w: %s (waited %s; raise snapshot.csi.readyTimeout for slow storage)", ErrNotReady, strings.Join(created, ", "), d.readyTimeout())
		}
		return nil, fmt.Errorf("while waiting for readyToUse: %w", err)
	}
	recordSizes(meta, ready)
	if err := req.Freezer.Close(ctx); err != nil {
		return nil, err
	}
	meta.FinishedAt = d.now().UTC()
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("while encoding metadata: %w", err)
	}
	// Metadata last: only now is the snapshot listed.
	if err := patchAnnotations(ctx, client, created[0], map[string]string{AnnMetadata: string(b)}); err != nil {
		return nil, err
	}
	return meta, nil
}

// release closes the freezer after a failed snapshot and joins what closing returned into err:
// a failed thaw, backup stop or unlock leaves the database frozen, in backup mode or locked,
// which the caller must hear about. It closes with a context that survives ctx's cancellation,
// so an interrupted snapshot still releases the database.
func release(ctx context.Context, f engine.Freezer, err error) error {
	return engine.CloseAfter(context.WithoutCancel(ctx), f, err)
}

func (d *Driver) maxPoll() time.Duration {
	if d.MaxPoll <= 0 {
		return time.Second
	}
	return d.MaxPoll
}

func (d *Driver) readyTimeout() time.Duration {
	if d.ReadyTimeout <= 0 {
		return 10 * time.Minute
	}
	return d.ReadyTimeout
}

// waitAll polls the named VolumeSnapshots until done holds for each, and fails at once on a
// status.error, quoting its message verbatim. Polling, not a fixed sleep: the first read is
// immediate and the interval starts short, so a fast cut thaws the database within milliseconds.
func (d *Driver) waitAll(ctx context.Context, client snapshotv1client.VolumeSnapshotInterface, names []string, maxPoll time.Duration, done func(*snapshotv1.VolumeSnapshot) bool) ([]*snapshotv1.VolumeSnapshot, error) {
	return d.waitUntil(ctx, client, names, maxPoll, time.Time{}, done)
}

// waitUntil is waitAll ended with ErrNotReady once the driver's clock reaches a non-zero deadline.
func (d *Driver) waitUntil(ctx context.Context, client snapshotv1client.VolumeSnapshotInterface, names []string, maxPoll time.Duration, deadline time.Time, done func(*snapshotv1.VolumeSnapshot) bool) ([]*snapshotv1.VolumeSnapshot, error) {
	poll := d.Poll
	if poll <= 0 {
		poll = 10 * time.Millisecond
	}
	poll = min(poll, maxPoll)
	out := make([]*snapshotv1.VolumeSnapshot, len(names))
	for {
		pending := 0
		for i, name := range names {
			if out[i] != nil {
				continue
			}
			vs, err := client.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctxErr(ctx)
				}
				if apierrors.IsNotFound(err) {
					return nil, fmt.Errorf("VolumeSnapshot %s/%s was deleted while firedrill waited for it: %w", d.Namespace, name, err)
				}
				return nil, fmt.Errorf("while reading VolumeSnapshot %s/%s: %w", d.Namespace, name, err)
			}
			if s := vs.Status; s != nil && s.Error != nil && s.Error.Message != nil {
				return nil, fmt.Errorf("%w: %s/%s: %s", ErrSnapshotFailed, d.Namespace, name, *s.Error.Message)
			}
			if done(vs) {
				out[i] = vs
				continue
			}
			pending++
		}
		if pending == 0 {
			return out, nil
		}
		if !deadline.IsZero() && !d.clock().Now().Before(deadline) {
			return nil, ErrNotReady
		}
		wait := poll
		if !deadline.IsZero() {
			wait = min(wait, deadline.Sub(d.clock().Now()))
		}
		t := d.clock().NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctxErr(ctx)
		case <-t.C():
		}
		poll = min(poll*2, maxPoll)
	}
}

func ctxErr(ctx context.Context) error {
	if c := context.Cause(ctx); c != nil && c != ctx.Err() {
		return fmt.Errorf("%w: %w", ctx.Err(), c)
	}
	return ctx.Err()
}

func annotations(f *engine.Frozen, attrs map[string]string, frozenAt, thawedAt time.Time) map[string]string {
	ann := map[string]string{
		AnnFrozenSeconds: strconv.FormatFloat(f.Duration().Seconds(), 'f', 3, 64),
		AnnFrozenAt:      frozenAt.UTC().Format(time.RFC3339Nano),
		AnnThawedAt:      thawedAt.UTC().Format(time.RFC3339Nano),
	}
	if b, ok := f.Files["backup_label"]; ok {
		ann[AnnBackupLabel] = base64.StdEncoding.EncodeToString(b)
	}
	if b, ok := f.Files["tablespace_map"]; ok {
		ann[AnnTablespaceMap] = base64.StdEncoding.EncodeToString(b)
	}
	for attr, key := range map[string]string{
		"startLSN": AnnStartLSN, "stopLSN": AnnStopLSN, "timeline": AnnTimeline,
		"binlogFile": AnnBinlogFile, "binlogPosition": AnnBinlogPosition,
	} {
		if v := attrs[attr]; v != "" {
			ann[key] = v
		}
	}
	if v := attrs["gtidBinlogPos"] + attrs["gtidExecuted"]; v != "" {
		ann[AnnGTID] = v
	}
	return ann
}

func patchAnnotations(ctx context.Context, client snapshotv1client.VolumeSnapshotInterface, name string, ann map[string]string) error {
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err != nil {
		return fmt.Errorf("while encoding annotations: %w", err)
	}
	if _, err := client.Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("while annotating VolumeSnapshot %s: %w", name, err)
	}
	return nil
}

// deleteAll deletes VolumeSnapshots with a context of its own: cleanup must run after an
// interrupt, but must not hang forever on an unreachable API server.
func deleteAll(ctx context.Context, client snapshotv1client.VolumeSnapshotInterface, names []string) error {
	if len(names) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	for _, name := range names {
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			err = client.Delete(cctx, name, metav1.DeleteOptions{})
			if err == nil || apierrors.IsNotFound(err) {
				err = nil
				break
			}
			select {
			case <-cctx.Done():
			case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("while deleting VolumeSnapshot %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// List returns a target's complete and ready snapshots, newest first.
func (d *Driver) List(ctx context.Context, target string) ([]snapshot.Metadata, error) {
	vss, err := d.list(ctx, LabelTarget+"="+target)
	if err != nil {
		return nil, err
	}
	return complete(vss), nil
}

// Get returns one complete and ready snapshot by id.
func (d *Driver) Get(ctx context.Context, id string) (*snapshot.Metadata, error) {
	if LabelValue(id) != id || id == "" {
		return nil, fmt.Errorf("%w: invalid id %q", snapshot.ErrNotFound, id)
	}
	vss, err := d.list(ctx, LabelSnapshotID+"="+id)
	if err != nil {
		return nil, err
	}
	all := complete(vss)
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: %s in namespace %s", snapshot.ErrNotFound, id, d.Namespace)
	}
	return &all[0], nil
}

// Delete deletes every VolumeSnapshot of a snapshot, complete or not.
func (d *Driver) Delete(ctx context.Context, id string) error {
	vss, err := d.list(ctx, LabelSnapshotID+"="+id)
	if err != nil {
		return err
	}
	if len(vss) == 0 {
		return fmt.Errorf("%w: %s in namespace %s", snapshot.ErrNotFound, id, d.Namespace)
	}
	names := make([]string, len(vss))
	groups := map[string]bool{}
	for i, vs := range vss {
		names[i] = vs.Name
		if g := vs.Labels[LabelVolumeGroupSnapshot]; g != "" {
			groups[g] = true
		}
	}
	if err := deleteAll(ctx, d.API.VolumeSnapshots(d.Namespace), names); err != nil {
		return err
	}
	return d.releaseGroups(ctx, groups)
}

// DeleteBatch deletes every VolumeSnapshot of a batch: what a failed group leaves.
func (d *Driver) DeleteBatch(ctx context.Context, batchID string) error {
	vss, err := d.list(ctx, LabelBatchID+"="+batchID)
	if err != nil {
		return err
	}
	names := make([]string, len(vss))
	for i, vs := range vss {
		names[i] = vs.Name
	}
	return deleteAll(ctx, d.API.VolumeSnapshots(d.Namespace), names)
}

func (d *Driver) list(ctx context.Context, selector string) ([]snapshotv1.VolumeSnapshot, error) {
	sel := LabelManagedBy + "=" + ManagedByValue + "," + selector
	l, err := d.API.VolumeSnapshots(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("while listing VolumeSnapshots in %s (%s): %w", d.Namespace, sel, err)
	}
	return l.Items, nil
}

// complete keeps snapshots whose metadata was written and whose every volume is ready and
// error-free.
func complete(vss []snapshotv1.VolumeSnapshot) []snapshot.Metadata {
	byName := map[string]*snapshotv1.VolumeSnapshot{}
	for i := range vss {
		byName[vss[i].Name] = &vss[i]
	}
	var out []snapshot.Metadata
	for _, vs := range vss {
		raw, ok := vs.Annotations[AnnMetadata]
		if !ok || vs.DeletionTimestamp != nil {
			continue
		}
		var m snapshot.Metadata
		if err := json.Unmarshal([]byte(raw), &m); err != nil || m.ID != vs.Labels[LabelSnapshotID] {
			continue
		}
		ok = len(m.Volumes) > 0
		for _, v := range m.Volumes {
			o := byName[v.VolumeSnapshot]
			if o == nil || o.DeletionTimestamp != nil || o.Status == nil || o.Status.ReadyToUse == nil || !*o.Status.ReadyToUse || o.Status.Error != nil {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	snapshot.SortNewestFirst(out)
	return out
}

// VolumeSnapshotName names the VolumeSnapshot of one volume of a snapshot.
func VolumeSnapshotName(target, id, role string) string {
	return strings.ToLower(target + "-" + id + "-" + role)
}

var labelBad = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// LabelValue makes s a valid label value: at most 63 characters of [A-Za-z0-9._-], starting
// and ending with a letter or digit. "15.18 (Debian 15.18-1)" becomes "15.18_Debian_15.18-1".
func LabelValue(s string) string {
	s = labelBad.ReplaceAllString(s, "_")
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

func with(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

func newID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// TargetView is the driver seen from one target: List, Get and Delete, as the local
// repository offers them.
type TargetView struct {
	d      *Driver
	target string
}

// Target returns the driver's view of one target's snapshots.
func (d *Driver) Target(target string) *TargetView { return &TargetView{d: d, target: target} }

// List returns the target's complete and ready snapshots, newest first.
func (v *TargetView) List(ctx context.Context) ([]snapshot.Metadata, error) {
	return v.d.List(ctx, v.target)
}

// Get returns one of the target's snapshots.
func (v *TargetView) Get(ctx context.Context, id string) (*snapshot.Metadata, error) {
	m, err := v.d.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Target != v.target {
		return nil, fmt.Errorf("%w: %s is a snapshot of %s, not %s", snapshot.ErrNotFound, id, m.Target, v.target)
	}
	return m, nil
}

// Delete deletes one of the target's snapshots.
func (v *TargetView) Delete(ctx context.Context, id string) error {
	if _, err := v.Get(ctx, id); err != nil {
		return err
	}
	return v.d.Delete(ctx, id)
}

// recordSizes records the ready VolumeSnapshots' restore sizes in meta (volume i is ready[i]).
// restoreSize is optional in the CSI spec: a missing one leaves the size unknown, not zero.
func recordSizes(meta *snapshot.Metadata, ready []*snapshotv1.VolumeSnapshot) {
	for i, vs := range ready {
		if rs := vs.Status.RestoreSize; rs != nil {
			meta.Volumes[i].RestoreSizeBytes = rs.Value()
			meta.SizeBytes += rs.Value()
		} else {
			meta.SizeUnknown = true
		}
	}
	meta.Files = len(meta.Volumes)
}
