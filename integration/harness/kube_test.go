package harness_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/firedrill/firedrill/integration/harness"
)

func volumeSnapshot(name, pvc string) *snapshotv1.VolumeSnapshot {
	return &snapshotv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: snapshotv1.VolumeSnapshotSpec{
			Source:                  snapshotv1.VolumeSnapshotSource{PersistentVolumeClaimName: &pvc},
			VolumeSnapshotClassName: new("csi-hostpath-snapclass"),
		},
	}
}

func TestKubeSnapshotCRDs(t *testing.T) {
	harness.Integration(t)
	k := harness.StartKube(t)
	ctx := t.Context()

	v, err := k.Clientset.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("ServerVersion: %v", err)
	}
	if v.GitVersion != harness.KubeAPIServerVersion {
		t.Errorf("server version = %s, want %s", v.GitVersion, harness.KubeAPIServerVersion)
	}
	for _, gv := range []string{"snapshot.storage.k8s.io/v1", "groupsnapshot.storage.k8s.io/v1beta2", "groupsnapshot.storage.k8s.io/v1"} {
		if _, err := k.Clientset.Discovery().ServerResourcesForGroupVersion(gv); err != nil {
			t.Errorf("%s is not served: %v", gv, err)
		}
	}

	if _, err := k.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "db"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	class := &snapshotv1.VolumeSnapshotClass{
		ObjectMeta:     metav1.ObjectMeta{Name: "csi-hostpath-snapclass"},
		Driver:         "hostpath.csi.k8s.io",
		DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete,
	}
	if _, err := k.Snapshots.SnapshotV1().VolumeSnapshotClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating VolumeSnapshotClass: %v", err)
	}

	snaps := k.Snapshots.SnapshotV1().VolumeSnapshots("db")
	if _, err := snaps.Create(ctx, volumeSnapshot("pgdata-1", "pgdata"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating VolumeSnapshot: %v", err)
	}
	got, err := snaps.Get(ctx, "pgdata-1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the VolumeSnapshot back: %v", err)
	}
	if pvc := got.Spec.Source.PersistentVolumeClaimName; pvc == nil || *pvc != "pgdata" {
		t.Errorf("read back source PVC %v, want pgdata", pvc)
	}

	// The CRDs' schemas and CEL rules are enforced, as on a real cluster.
	invalid := map[string]func(*snapshotv1.VolumeSnapshot){
		"no source": func(s *snapshotv1.VolumeSnapshot) { s.Spec.Source = snapshotv1.VolumeSnapshotSource{} },
		"two sources": func(s *snapshotv1.VolumeSnapshot) {
			s.Spec.Source.VolumeSnapshotContentName = new("snapcontent-1")
		},
		"empty class name": func(s *snapshotv1.VolumeSnapshot) { s.Spec.VolumeSnapshotClassName = new("") },
	}
	for name, mutate := range invalid {
		t.Run(name, func(t *testing.T) {
			s := volumeSnapshot("invalid", "pgdata")
			mutate(s)
			_, err := snaps.Create(ctx, s, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("creating a VolumeSnapshot with %s: err = %v, want Invalid", name, err)
			}
			t.Logf("rejected: %v", err)
		})
	}

	// The source is immutable (a CEL transition rule).
	got.Spec.Source.PersistentVolumeClaimName = new("other")
	if _, err := snaps.Update(ctx, got, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("changing the source PVC: err = %v, want Invalid", err)
	}
}

func TestKubeClientAsServiceAccount(t *testing.T) {
	harness.Integration(t)
	k := harness.StartKube(t)
	ctx := t.Context()

	reader := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "snapshot-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{snapshotv1.GroupName}, Resources: []string{"volumesnapshots"}, Verbs: []string{"get"},
		}},
	}
	classReader := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "snapshotclass-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{snapshotv1.GroupName}, Resources: []string{"volumesnapshotclasses"}, Verbs: []string{"list"},
		}},
	}
	cfg := k.ClientAs(t, "db", "auditor", reader, classReader)
	if cfg.CertData != nil || cfg.CertFile != "" || cfg.BearerToken == "" {
		t.Fatalf("ClientAs config does not authenticate with a bearer token only")
	}
	if _, err := k.Snapshots.SnapshotV1().VolumeSnapshots("db").Create(ctx, volumeSnapshot("pgdata-1", "pgdata"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the VolumeSnapshot as admin: %v", err)
	}

	sa, err := snapshotclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The token is a real ServiceAccount token: the API server says who we are.
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	who, err := kc.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview: %v", err)
	}
	if u := who.Status.UserInfo.Username; u != "system:serviceaccount:db:auditor" {
		t.Errorf("authenticated as %q, want system:serviceaccount:db:auditor", u)
	}

	// Allowed: exactly what the roles grant.
	if _, err := sa.SnapshotV1().VolumeSnapshots("db").Get(ctx, "pgdata-1", metav1.GetOptions{}); err != nil {
		t.Errorf("get volumesnapshot (granted): %v", err)
	}
	if _, err := sa.SnapshotV1().VolumeSnapshotClasses().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list volumesnapshotclasses (granted cluster-wide): %v", err)
	}

	// Forbidden: everything else.
	denied := map[string]func() error{
		"create volumesnapshot": func() error {
			_, err := sa.SnapshotV1().VolumeSnapshots("db").Create(ctx, volumeSnapshot("pgdata-2", "pgdata"), metav1.CreateOptions{})
			return err
		},
		"delete volumesnapshot": func() error {
			return sa.SnapshotV1().VolumeSnapshots("db").Delete(ctx, "pgdata-1", metav1.DeleteOptions{})
		},
		"list volumesnapshots": func() error {
			_, err := sa.SnapshotV1().VolumeSnapshots("db").List(ctx, metav1.ListOptions{})
			return err
		},
		"get volumesnapshot in another namespace": func() error {
			_, err := sa.SnapshotV1().VolumeSnapshots("default").Get(ctx, "pgdata-1", metav1.GetOptions{})
			return err
		},
		"list secrets": func() error {
			_, err := kc.CoreV1().Secrets("db").List(ctx, metav1.ListOptions{})
			return err
		},
	}
	for name, call := range denied {
		t.Run(name, func(t *testing.T) {
			if err := call(); !apierrors.IsForbidden(err) {
				t.Errorf("err = %v, want Forbidden", err)
			}
		})
	}
}

// The copies in testdata/kube/crds are the CRDs of the client module go.mod requires: bumping the
// client without copying its CRDs again fails here.
func TestSnapshotCRDsMatchTheClientModule(t *testing.T) {
	const module = "github.com/kubernetes-csi/external-snapshotter/client/v8"
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		t.Skipf("cannot locate %s in the module cache: %v", module, err)
	}
	src := filepath.Join(strings.TrimSpace(string(out)), "config", "crd")
	want, err := filepath.Glob(filepath.Join(src, "*.storage.k8s.io_*.yaml"))
	if err != nil || len(want) == 0 {
		t.Fatalf("no CRDs in %s (%v)", src, err)
	}
	got, _ := filepath.Glob(filepath.Join("testdata", "kube", "crds", "*.yaml"))
	if len(got) != len(want) {
		t.Errorf("testdata/kube/crds has %d CRDs, %s has %d", len(got), src, len(want))
	}
	for _, w := range want {
		a, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join("testdata", "kube", "crds", filepath.Base(w)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("testdata/kube/crds/%s differs from %s (%v): copy the CRDs again", filepath.Base(w), w, err)
		}
	}
}

// The harness looks for the binary gotools.sh builds from the version pinned in the tools module.
func TestKubeAPIServerPinMatchesToolsModule(t *testing.T) {
	checkToolPin(t, "kube-apiserver", "k8s.io/kubernetes", harness.KubeAPIServerVersion)
}

func checkToolPin(t *testing.T, tool, module, want string) {
	t.Helper()
	gomod := filepath.Join("..", "tools", tool, "go.mod")
	b, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == module {
			if f[1] != want {
				t.Errorf("%s requires %s %s, the harness runs %s", gomod, module, f[1], want)
			}
			return
		}
	}
	t.Errorf("%s does not require %s", gomod, module)
}
