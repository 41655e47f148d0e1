package volumesnapshot

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
)

const prodNS = "prod"

var t0 = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)

// vsBuilder builds a production VolumeSnapshot: ready, bound, with a restore size, cut at t0+h.
type vsBuilder struct{ vs *snapshotv1.VolumeSnapshot }

func newVS(name string, hour int) *vsBuilder {
	pvc := "pg-1"
	content := "snapcontent-" + name
	cut := metav1.NewTime(t0.Add(time.Duration(hour) * time.Hour))
	size := resource.MustParse("10Gi")
	return &vsBuilder{&snapshotv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: prodNS, Labels: map[string]string{"app": "db"}, Annotations: map[string]string{}},
		Spec:       snapshotv1.VolumeSnapshotSpec{Source: snapshotv1.VolumeSnapshotSource{PersistentVolumeClaimName: &pvc}},
		Status: &snapshotv1.VolumeSnapshotStatus{ReadyToUse: new(true), BoundVolumeSnapshotContentName: &content,
			CreationTime: &cut, RestoreSize: &size},
	}}
}

func (b *vsBuilder) label(k, v string) *vsBuilder { b.vs.Labels[k] = v; return b }
func (b *vsBuilder) ann(k, v string) *vsBuilder   { b.vs.Annotations[k] = v; return b }
func (b *vsBuilder) pvc(name string) *vsBuilder {
	b.vs.Spec.Source.PersistentVolumeClaimName = &name
	return b
}
func (b *vsBuilder) notReady() *vsBuilder { b.vs.Status.ReadyToUse = new(false); return b }
func (b *vsBuilder) noStatus() *vsBuilder { b.vs.Status = nil; return b }
func (b *vsBuilder) failed(msg string) *vsBuilder {
	b.vs.Status.Error = &snapshotv1.VolumeSnapshotError{Message: &msg}
	return b
}
func (b *vsBuilder) deleting() *vsBuilder {
	now := metav1.NewTime(t0)
	b.vs.DeletionTimestamp = &now
	b.vs.Finalizers = []string{"snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"}
	return b
}
func (b *vsBuilder) obj() *snapshotv1.VolumeSnapshot { return b.vs }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// ownSnapshot is a VolumeSnapshot as csi.Driver leaves it: firedrill's labels, the snapshot's
// metadata as JSON on the data volume.
func ownSnapshot(t *testing.T, id string, hour int, ready bool) *snapshotv1.VolumeSnapshot {
	t.Helper()
	name := csi.VolumeSnapshotName("orders", id, csi.RoleData)
	m := snapshot.Metadata{ID: id, Target: "orders", Engine: "postgres", Driver: csi.DriverName, TakenAt: t0.Add(time.Duration(hour) * time.Hour),
		Status: snapshot.StatusComplete, Volumes: []snapshot.Volume{{Role: csi.RoleData, PVC: "pg-1", VolumeSnapshot: name}}}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	b := newVS(name, hour).label(csi.LabelManagedBy, csi.ManagedByValue).label(csi.LabelTarget, "orders").
		label(csi.LabelSnapshotID, id).label(csi.LabelVolume, csi.RoleData).ann(csi.AnnMetadata, string(raw))
	if !ready {
		b.notReady()
	}
	return b.obj()
}

func ids(ms []snapshot.Metadata) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func roles(m snapshot.Metadata) []string {
	out := []string{}
	for _, v := range m.Volumes {
		out = append(out, v.Role)
	}
	return out
}

func newSource(cs *fake.Clientset, selector, sourcePVC string) *Source {
	return &Source{Snapshots: cs.SnapshotV1(), Target: "orders", Engine: "postgres", SnapshotNamespace: prodNS,
		Selector: selector, SourcePVC: sourcePVC, ScratchNamespace: scratchNS}
}

func TestList(t *testing.T) {
	const label = "START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\nBACKUP METHOD: streamed\n"
	tests := []struct {
		name      string
		objs      func(t *testing.T) []runtime.Object
		selector  string
		sourcePVC string
		want      []string
		check     func(t *testing.T, got []snapshot.Metadata)
	}{
		{
			name: "firedrill's own snapshots through the csi driver's metadata, newest first, incomplete ones left out",
			objs: func(t *testing.T) []runtime.Object {
				return []runtime.Object{ownSnapshot(t, "s1", 1, true), ownSnapshot(t, "s3", 3, false), ownSnapshot(t, "s2", 2, true),
					newVS("foreign", 9).obj()}
			},
			want: []string{"s2", "s1"},
		},
		{
			name: "other tools' snapshots by selector: newest first, failed, not ready, unbound and deleting ones skipped",
			objs: func(*testing.T) []runtime.Object {
				return []runtime.Object{
					newVS("a", 1).obj(), newVS("b", 2).obj(),
					newVS("errored", 3).failed("InvalidSnapshotClass").obj(),
					newVS("pending", 4).notReady().obj(),
					newVS("nostatus", 5).noStatus().obj(),
					newVS("deleting", 6).deleting().obj(),
					newVS("unselected", 7).label("app", "other").obj(),
				}
			},
			selector: "app=db",
			want:     []string{"b", "a"},
			check: func(t *testing.T, got []snapshot.Metadata) {
				for _, m := range got {
					if m.Attributes[AttrConsistency] != "crash" || m.Mode != "crash-consistent" || m.Attributes[AttrTakenBy] != "other" {
						t.Errorf("%s: attributes %v mode %q, want crash-consistent taken by other", m.ID, m.Attributes, m.Mode)
					}
					if note := Consistency(&m); !strings.Contains(note, "crash-consistent") || !strings.Contains(note, m.ID) {
						t.Errorf("%s: Consistency note %q should say it is drilled as crash-consistent", m.ID, note)
					}
					if m.SizeBytes != 10<<30 || m.Status != snapshot.StatusComplete || m.Driver != csi.DriverName {
						t.Errorf("%s: size %d status %q driver %q", m.ID, m.SizeBytes, m.Status, m.Driver)
					}
				}
			},
		},
		{
			name: "CloudNativePG volumes grouped by backup name, roles from pvcRole, backup_label decoded",
			objs: func(*testing.T) []runtime.Object {
				return []runtime.Object{
					// The WAL volume first: the data volume must still come first in the result.
					newVS("bk1-wal", 2).pvc("pg-1-wal").label(CNPGBackupName, "bk1").label(CNPGPVCRole, "PG_WAL").obj(),
					newVS("bk1-data", 2).label(CNPGBackupName, "bk1").label(CNPGPVCRole, "PG_DATA").
						ann(CNPGBackupLabel, b64(label)).ann(CNPGTablespaceMap, b64("16400 /tblspc\n")).
						ann(CNPGBackupEndTime, t0.Add(2*time.Hour+5*time.Minute).Format(time.RFC3339)).obj(),
					newVS("bk0-data", 1).label(CNPGBackupName, "bk0").label(CNPGPVCRole, "PG_DATA").obj(),
					// A WAL volume alone is no restorable backup.
					newVS("bk9-wal", 9).label(CNPGBackupName, "bk9").label(CNPGPVCRole, "PG_WAL").obj(),
				}
			},
			selector: "app=db",
			want:     []string{"bk1", "bk0"},
			check: func(t *testing.T, got []snapshot.Metadata) {
				bk1, bk0 := got[0], got[1]
				if r := strings.Join(roles(bk1), ","); r != "data,wal" {
					t.Errorf("bk1 roles %s, want data,wal", r)
				}
				if bk1.Volumes[0].VolumeSnapshot != "bk1-data" || bk1.Volumes[1].PVC != "pg-1-wal" {
					t.Errorf("bk1 volumes %+v", bk1.Volumes)
				}
				if string(bk1.EngineFiles[postgres.BackupLabelFile]) != label {
					t.Errorf("bk1 backup_label %q, want %q", bk1.EngineFiles[postgres.BackupLabelFile], label)
				}
				if string(bk1.EngineFiles[postgres.TablespaceMapFile]) != "16400 /tblspc\n" {
					t.Errorf("bk1 tablespace_map %q", bk1.EngineFiles[postgres.TablespaceMapFile])
				}
				if bk1.Attributes[AttrConsistency] != "online" || bk1.Mode != "online" || bk1.Attributes[AttrTakenBy] != "cloudnative-pg" {
					t.Errorf("bk1 attributes %v mode %q", bk1.Attributes, bk1.Mode)
				}
				if !bk1.TakenAt.Equal(t0.Add(2*time.Hour + 5*time.Minute)) {
					t.Errorf("bk1 taken at %s, want the backup's end time", bk1.TakenAt)
				}
				if note := Consistency(&bk1); note != "" {
					t.Errorf("bk1 has a backup label, yet the note says %q", note)
				}
				if bk1.Files != 2 || bk1.SizeBytes != 20<<30 {
					t.Errorf("bk1 files %d size %d", bk1.Files, bk1.SizeBytes)
				}
				if bk0.Attributes[AttrConsistency] != "crash" || Consistency(&bk0) == "" {
					t.Errorf("bk0 has no backup label: attributes %v", bk0.Attributes)
				}
			},
		},
		{
			name: "firedrill's annotations read through a selector too",
			objs: func(*testing.T) []runtime.Object {
				return []runtime.Object{newVS("x-data", 1).label(csi.LabelSnapshotID, "x").ann(csi.AnnBackupLabel, b64(label)).
					ann(csi.AnnEngineVersion, "16.4").obj()}
			},
			selector: "app=db",
			want:     []string{"x"},
			check: func(t *testing.T, got []snapshot.Metadata) {
				if string(got[0].EngineFiles[postgres.BackupLabelFile]) != label || got[0].EngineVersion != "16.4" {
					t.Errorf("files %v version %q", got[0].EngineFiles, got[0].EngineVersion)
				}
			},
		},
		{
			name: "an annotation that is not base64 is ignored: crash-consistent",
			objs: func(*testing.T) []runtime.Object {
				return []runtime.Object{newVS("bad", 1).ann(CNPGBackupLabel, "not base64 !!").obj()}
			},
			selector: "app=db",
			want:     []string{"bad"},
			check: func(t *testing.T, got []snapshot.Metadata) {
				if got[0].Attributes[AttrConsistency] != "crash" {
					t.Errorf("consistency %q", got[0].Attributes[AttrConsistency])
				}
			},
		},
		{
			name: "sourcePVC keeps the snapshots of that PVC only",
			objs: func(*testing.T) []runtime.Object {
				return []runtime.Object{newVS("one", 1).pvc("pg-1").obj(), newVS("two", 2).pvc("pg-2").obj(), newVS("three", 3).pvc("pg-1").obj()}
			},
			sourcePVC: "pg-1",
			want:      []string{"three", "one"},
		},
		{
			name: "tablespace volumes are named as skipped",
			objs: func(*testing.T) []runtime.Object {
				return []runtime.Object{
					newVS("bk-data", 1).label(CNPGBackupName, "bk").label(CNPGPVCRole, "PG_DATA").obj(),
					newVS("bk-tbs", 1).label(CNPGBackupName, "bk").label(CNPGPVCRole, "PG_TABLESPACE").obj(),
				}
			},
			selector: "app=db",
			want:     []string{"bk"},
			check: func(t *testing.T, got []snapshot.Metadata) {
				if got[0].Attributes["skippedTablespace"] != "bk-tbs" || len(got[0].Volumes) != 1 {
					t.Errorf("attributes %v volumes %+v", got[0].Attributes, got[0].Volumes)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewSimpleClientset(tt.objs(t)...)
			s := newSource(cs, tt.selector, tt.sourcePVC)
			got, err := s.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if g, w := strings.Join(ids(got), ","), strings.Join(tt.want, ","); g != w {
				t.Fatalf("List = [%s], want [%s]", g, w)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func TestListErrors(t *testing.T) {
	gr := schema.GroupResource{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshots"}
	tests := []struct {
		name     string
		selector string
		err      error
		want     []string
		is       func(error) bool
	}{
		{"forbidden, own snapshots", "", apierrors.NewForbidden(gr, "", errors.New("RBAC")), []string{"while listing VolumeSnapshots in " + prodNS}, apierrors.IsForbidden},
		{"forbidden, selector", "app=db", apierrors.NewForbidden(gr, "", errors.New("RBAC")), []string{"while listing VolumeSnapshots in namespace " + prodNS}, apierrors.IsForbidden},
		{"server timeout", "app=db", apierrors.NewServerTimeout(gr, "list", 1), []string{"app=db"}, apierrors.IsServerTimeout},
		{"invalid selector", "app in (", nil, []string{"restore.kubernetes.snapshotSelector"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewSimpleClientset(newVS("a", 1).obj())
			if tt.err != nil {
				cs.PrependReactor("list", "volumesnapshots", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tt.err })
			}
			_, err := newSource(cs, tt.selector, "").List(context.Background())
			if err == nil {
				t.Fatal("List succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.is != nil && !tt.is(err) {
				t.Errorf("error %v does not wrap the API error", err)
			}
		})
	}
}

func TestGet(t *testing.T) {
	tests := []struct {
		name     string
		selector string
		id       string
		found    bool
	}{
		{"own, known", "", "s1", true},
		{"own, unknown", "", "nope", false},
		{"own, invalid id", "", "no/such id", false},
		{"selector, known group", "app=db", "bk1", true},
		{"selector, unknown", "app=db", "nope", false},
		{"selector, not ready is not found", "app=db", "pending", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewSimpleClientset(ownSnapshot(t, "s1", 1, true),
				newVS("bk1-data", 2).label(CNPGBackupName, "bk1").label(CNPGPVCRole, "PG_DATA").obj(),
				newVS("pending", 3).notReady().obj())
			m, err := newSource(cs, tt.selector, "").Get(context.Background(), tt.id)
			if tt.found {
				if err != nil || m == nil || m.ID != tt.id {
					t.Fatalf("Get(%s) = %v, %v", tt.id, m, err)
				}
				return
			}
			if !errors.Is(err, snapshot.ErrNotFound) {
				t.Fatalf("Get(%s) error %v, want snapshot.ErrNotFound", tt.id, err)
			}
		})
	}
}
