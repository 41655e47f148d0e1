package volumesnapshot

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
)

// CloudNativePG's VolumeSnapshot labels and annotations (cnpg.io/...): a backup's snapshots
// share cnpg.io/backupName, each names its volume's role, and an online backup keeps its
// backup_label and tablespace_map, base64, as annotations.
const (
	CNPGBackupName    = "cnpg.io/backupName"
	CNPGPVCRole       = "cnpg.io/pvcRole"
	CNPGBackupLabel   = "cnpg.io/backupLabelFile"
	CNPGTablespaceMap = "cnpg.io/backupTablespaceMapFile"
	CNPGBackupEndTime = "cnpg.io/backupEndTime"
)

// Attribute keys a foreign snapshot's metadata carries.
const (
	// AttrConsistency is "online" (a backup label was found) or "crash" (none: the copy is
	// recovered as after a power loss).
	AttrConsistency = "consistency"
	// AttrTakenBy says which tool took it: firedrill, cloudnative-pg or "other".
	AttrTakenBy = "takenBy"
)

// List returns the target's restorable snapshots, newest first. Snapshots being deleted, not
// ready, or carrying status.error are skipped (and logged): they cannot be restored.
func (s *Source) List(ctx context.Context) ([]snapshot.Metadata, error) {
	if s.own() {
		return s.driver().List(ctx, s.Target)
	}
	sel, err := labels.Parse(s.Selector)
	if err != nil {
		return nil, fmt.Errorf("while parsing restore.kubernetes.snapshotSelector %q: %w", s.Selector, err)
	}
	l, err := s.Snapshots.VolumeSnapshots(s.SnapshotNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("while listing VolumeSnapshots in namespace %s (%s): %w", s.SnapshotNamespace, sel, err)
	}
	groups := map[string][]*snapshotv1.VolumeSnapshot{}
	var order []string
	for i := range l.Items {
		vs := &l.Items[i]
		if why := unusable(vs); why != "" {
			s.log().Info("skipping a VolumeSnapshot that cannot be restored", "namespace", vs.Namespace, "volumeSnapshot", vs.Name, "reason", why)
			continue
		}
		if s.SourcePVC != "" && (vs.Spec.Source.PersistentVolumeClaimName == nil || *vs.Spec.Source.PersistentVolumeClaimName != s.SourcePVC) && role(vs) == csi.RoleData {
			continue
		}
		key := groupKey(vs)
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], vs)
	}
	var out []snapshot.Metadata
	for _, key := range order {
		if m, ok := s.foreign(key, groups[key]); ok {
			out = append(out, m)
		}
	}
	snapshot.SortNewestFirst(out)
	return out, nil
}

// Get returns one restorable snapshot by id.
func (s *Source) Get(ctx context.Context, id string) (*snapshot.Metadata, error) {
	if s.own() {
		return s.driver().Target(s.Target).Get(ctx, id)
	}
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].ID == id {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("%w: no restorable VolumeSnapshot (or group) %s in namespace %s matches %q", snapshot.ErrNotFound, id, s.SnapshotNamespace, s.Selector)
}

// unusable says why a VolumeSnapshot cannot be restored, or "".
func unusable(vs *snapshotv1.VolumeSnapshot) string {
	switch {
	case vs.DeletionTimestamp != nil:
		return "being deleted"
	case vs.Status == nil:
		return "no status yet"
	case vs.Status.Error != nil:
		msg := "status.error"
		if vs.Status.Error.Message != nil {
			msg += ": " + *vs.Status.Error.Message
		}
		return msg
	case vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse:
		return "not readyToUse"
	case vs.Status.BoundVolumeSnapshotContentName == nil:
		return "bound to no VolumeSnapshotContent"
	}
	return ""
}

// groupKey puts the volumes of one backup together: CloudNativePG's backup name, firedrill's
// snapshot id, else the VolumeSnapshot alone.
func groupKey(vs *snapshotv1.VolumeSnapshot) string {
	if b := vs.Labels[CNPGBackupName]; b != "" {
		return b
	}
	if id := vs.Labels[csi.LabelSnapshotID]; id != "" {
		return id
	}
	return vs.Name
}

// role is a volume's role in the database.
func role(vs *snapshotv1.VolumeSnapshot) string {
	switch vs.Labels[CNPGPVCRole] {
	case "PG_WAL":
		return csi.RoleWAL
	case "PG_TABLESPACE":
		return "tablespace"
	}
	if r := vs.Labels[csi.LabelVolume]; r != "" {
		return r
	}
	return csi.RoleData
}

// foreign builds the metadata of a snapshot another tool took from its VolumeSnapshots.
func (s *Source) foreign(key string, vss []*snapshotv1.VolumeSnapshot) (snapshot.Metadata, bool) {
	m := snapshot.Metadata{ID: key, Target: s.Target, Engine: s.Engine, Driver: csi.DriverName,
		Attributes: map[string]string{AttrTakenBy: "other"}, EngineFiles: map[string][]byte{}}
	hasData := false
	for _, vs := range vss {
		r := role(vs)
		if r == "tablespace" {
			// Tablespace volumes are not restored yet: a drill of such a backup would be partial.
			s.log().Warn("a tablespace volume of this backup is not restored", "volumeSnapshot", vs.Name)
			m.Attributes["skippedTablespace"] = vs.Name
			continue
		}
		hasData = hasData || r == csi.RoleData
		pvc := ""
		if vs.Spec.Source.PersistentVolumeClaimName != nil {
			pvc = *vs.Spec.Source.PersistentVolumeClaimName
		}
		v := snapshot.Volume{Role: r, PVC: pvc, VolumeSnapshot: vs.Name}
		if vs.Status.CreationTime != nil {
			v.CutAt = vs.Status.CreationTime.Time
			if v.CutAt.After(m.TakenAt) {
				m.TakenAt = v.CutAt
			}
		}
		if rs := vs.Status.RestoreSize; rs != nil {
			v.RestoreSizeBytes = rs.Value()
			m.SizeBytes += rs.Value()
		} else {
			m.SizeUnknown = true
		}
		m.Volumes = append(m.Volumes, v)
		if vs.Labels[CNPGBackupName] != "" {
			m.Attributes[AttrTakenBy] = "cloudnative-pg"
		}
		for ann, file := range map[string]string{CNPGBackupLabel: postgres.BackupLabelFile, CNPGTablespaceMap: postgres.TablespaceMapFile,
			csi.AnnBackupLabel: postgres.BackupLabelFile, csi.AnnTablespaceMap: postgres.TablespaceMapFile} {
			if b64 := vs.Annotations[ann]; b64 != "" {
				if b, err := base64.StdEncoding.DecodeString(b64); err == nil {
					m.EngineFiles[file] = b
				} else {
					s.log().Warn("an annotation is not base64: ignored", "volumeSnapshot", vs.Name, "annotation", ann)
				}
			}
		}
		if end, err := time.Parse(time.RFC3339, vs.Annotations[CNPGBackupEndTime]); err == nil && end.After(m.TakenAt) {
			m.TakenAt = end
		}
		if v := vs.Annotations[csi.AnnEngineVersion]; v != "" {
			m.EngineVersion = v
		}
	}
	if !hasData {
		return m, false
	}
	sort.SliceStable(m.Volumes, func(i, j int) bool { return m.Volumes[i].Role == csi.RoleData && m.Volumes[j].Role != csi.RoleData })
	m.Attributes[AttrConsistency] = "crash"
	if len(m.EngineFiles[postgres.BackupLabelFile]) > 0 {
		m.Attributes[AttrConsistency] = "online"
		m.Mode = "online"
	} else {
		m.Mode = "crash-consistent"
	}
	m.Files = len(m.Volumes)
	m.Status = snapshot.StatusComplete
	return m, true
}

// Consistency explains, for the result, how a snapshot will be recovered.
func Consistency(m *snapshot.Metadata) string {
	if m.Driver != csi.DriverName || len(m.EngineFiles[postgres.BackupLabelFile]) > 0 {
		return ""
	}
	return fmt.Sprintf("snapshot %s carries no backup label (no %s or %s annotation): it is drilled as crash-consistent, recovered from its own WAL as after a power loss",
		m.ID, csi.AnnBackupLabel, CNPGBackupLabel)
}

// names lists the VolumeSnapshots of a snapshot, for messages.
func names(m *snapshot.Metadata) string {
	var n []string
	for _, v := range m.Volumes {
		n = append(n, v.VolumeSnapshot)
	}
	return strings.Join(n, ", ")
}
