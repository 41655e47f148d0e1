package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot/local"
)

const (
	kubeDriver     = "test.csi.firedrill.io"
	kubeScratchNS  = "firedrill-scratch"
	kubeDBNS       = "db"
	prodContent    = "snapcontent-prod-orders"
	prodSnapshot   = "orders-20261130"
	kubeDataSubdir = "pgdata"
)

// kubeDrill is one Kubernetes drill environment: a real API server, a real PostgreSQL whose real
// snapshot the "CSI snapshot" stands for, the fake controllers and kubelet, and a firedrill
// configuration that drills it with restore.runtime: kubernetes.
type kubeDrill struct {
	k       *harness.Kube
	pg      *harness.Postgres
	cluster *fakeCluster
	base    string
	repo    string
	id      string
	port    int

	mu   sync.Mutex
	pods []*corev1.Pod
}

func startKubeDrill(t *testing.T) *kubeDrill {
	t.Helper()
	harness.Integration(t)
	k := harness.StartKube(t)
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 1, TCP: true})
	ctx := t.Context()
	d := &kubeDrill{k: k, pg: pg, base: harness.TempDir(t), port: harness.FreePort(t)}
	d.repo = filepath.Join(d.base, "repo")

	// A real online snapshot of the real database: what the CSI snapshot holds.
	tg := target{pg: pg, repo: d.repo, scratch: filepath.Join(d.base, "scratch"), history: filepath.Join(d.base, "history")}
	if err := os.MkdirAll(tg.scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	d.id = snapshotID(t, ctx, writeConfig(t, tg))
	meta, err := local.NewForTarget(d.repo, "orders", 1).Get(ctx, d.id)
	if err != nil {
		t.Fatal(err)
	}
	label, err := os.ReadFile(filepath.Join(d.repo, d.id, "files", postgres.BackupLabelFile))
	if err != nil {
		t.Fatalf("the local snapshot has no backup_label: %v", err)
	}

	// Production: namespace db, its PVC of class fast, a ready VolumeSnapshot taken by
	// CloudNativePG (labels and base64 backup-label annotation as CNPG writes them), bound to a
	// content with deletionPolicy Delete (deleting it would delete the storage snapshot).
	cs, snaps := k.Clientset, k.Snapshots
	for _, ns := range []string{kubeDBNS, kubeScratchNS} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	immediate := storagev1.VolumeBindingImmediate
	if _, err := cs.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: kubeDriver, VolumeBindingMode: &immediate}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Provisioner: "other.csi.example.com"}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(kubeDBNS).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-1"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: new("fast"), AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	handle := "snap-handle-" + d.id
	if _, err := snaps.SnapshotV1().VolumeSnapshotContents().Create(ctx, &snapshotv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: prodContent},
		Spec: snapshotv1.VolumeSnapshotContentSpec{DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete, Driver: kubeDriver,
			Source:            snapshotv1.VolumeSnapshotContentSource{SnapshotHandle: &handle},
			VolumeSnapshotRef: corev1.ObjectReference{Namespace: kubeDBNS, Name: prodSnapshot}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	setContentStatus(t, d, handle)
	vs, err := snaps.SnapshotV1().VolumeSnapshots(kubeDBNS).Create(ctx, &snapshotv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: prodSnapshot,
			Labels:      map[string]string{"cnpg.io/cluster": "orders", "cnpg.io/backupName": "orders-20261130", "cnpg.io/pvcRole": "PG_DATA"},
			Annotations: map[string]string{"cnpg.io/backupLabelFile": base64.StdEncoding.EncodeToString(label)}},
		Spec: snapshotv1.VolumeSnapshotSpec{Source: snapshotv1.VolumeSnapshotSource{PersistentVolumeClaimName: new("orders-1")}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	taken := metav1.NewTime(meta.TakenAt)
	size := resource.MustParse("1Gi")
	vs.Status = &snapshotv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: new(prodContent), ReadyToUse: new(true), CreationTime: &taken, RestoreSize: &size}
	if _, err := snaps.SnapshotV1().VolumeSnapshots(kubeDBNS).UpdateStatus(ctx, vs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	runAs, err := postgres.ResolveRunAs("")
	if err != nil {
		t.Fatal(err)
	}
	c := newFakeCluster(t, cs, snaps, kubeScratchNS)
	c.clone = cloneSnapshot(d.repo, "orders", d.id, kubeDataSubdir, runAs)
	c.apiServer = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(k.Config.Host, "https://"), "http://"), "/")
	c.binDir = harness.PostgresBinDir(t, "")
	c.runAs = runAs
	c.onPod = func(p *corev1.Pod) {
		d.mu.Lock()
		d.pods = append(d.pods, p)
		d.mu.Unlock()
	}
	d.cluster = c
	c.start(t)
	return d
}

func setContentStatus(t *testing.T, d *kubeDrill, handle string) {
	t.Helper()
	c, err := d.k.Snapshots.SnapshotV1().VolumeSnapshotContents().Get(t.Context(), prodContent, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	size := int64(1 << 30)
	c.Status = &snapshotv1.VolumeSnapshotContentStatus{SnapshotHandle: &handle, ReadyToUse: new(true), RestoreSize: &size}
	if _, err := d.k.Snapshots.SnapshotV1().VolumeSnapshotContents().UpdateStatus(t.Context(), c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// shippedDrillRBAC reads the drill's shipped RBAC: the scratch Role, the ClusterRole, the
// source Role (in the database's namespace) and the diagnostics Role.
func shippedDrillRBAC(t *testing.T) (scratch *rbacv1.Role, cluster *rbacv1.ClusterRole, source, diag *rbacv1.Role) {
	t.Helper()
	read := func(name string, into any) {
		b, err := os.ReadFile(filepath.Join("..", "deploy", "rbac", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(b, into); err != nil {
			t.Fatalf("deploy/rbac/%s: %v", name, err)
		}
	}
	scratch, cluster, source, diag = &rbacv1.Role{}, &rbacv1.ClusterRole{}, &rbacv1.Role{}, &rbacv1.Role{}
	read("drill-kubernetes-role.yaml", scratch)
	read("drill-kubernetes-clusterrole.yaml", cluster)
	read("drill-kubernetes-source-role.yaml", source)
	read("drill-kubernetes-diagnostics-role.yaml", diag)
	scratch.Namespace, source.Namespace, diag.Namespace = kubeScratchNS, kubeDBNS, kubeScratchNS
	return scratch, cluster, source, diag
}

// serviceAccount binds grants (renamed with suffix, so each call has its own) to a new
// ServiceAccount and returns a kubeconfig file that authenticates as it.
func (d *kubeDrill) serviceAccount(t *testing.T, name string, grants ...runtime.Object) string {
	t.Helper()
	var renamed []runtime.Object
	for _, g := range grants {
		switch r := g.(type) {
		case *rbacv1.Role:
			c := r.DeepCopy()
			c.Name += "-" + name
			renamed = append(renamed, c)
		case *rbacv1.ClusterRole:
			c := r.DeepCopy()
			c.Name += "-" + name
			renamed = append(renamed, c)
		}
	}
	return writeKubeconfig(t, d.k.ClientAs(t, "firedrill", name, renamed...))
}

func (d *kubeDrill) config(t *testing.T, kubeconfig, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection:
      dsn: %q
    snapshot:
      driver: csi
      mode: online
      csi:
        namespace: %s
        pvc: orders-1
        className: fast-snapshots
    restore:
      runtime: kubernetes
      local:
        scratchDir: %s
      kubernetes:
        kubeconfig: %s
        namespace: %s
        snapshotSelector: cnpg.io/cluster=orders
        image: local/postgres:15
        subPath: %s
        port: %d
        connect: podIP
        timeouts:
          bind: 1m
          schedule: 1m
          start: 1m
          ready: 2m
%s
    objectives:
      rto: 10m
      rpo: 1000h
    checks:
      amcheck: true
      checksums: true
history:
  dir: %s
`, fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable", d.pg.Port, d.pg.Superuser), kubeDBNS, filepath.Join(d.base, "scratch"), kubeconfig, kubeScratchNS, kubeDataSubdir, d.port, extra, filepath.Join(d.base, "history"))
	p := filepath.Join(harness.TempDir(t), "firedrill.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// leftInCluster lists every object a drill may make that is still there (by firedrill's label),
// and checks that production's snapshot and content are untouched.
func (d *kubeDrill) leftInCluster(t *testing.T) []string {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=firedrill"}
	var left []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		left = left[:0]
		pods, _ := d.k.Clientset.CoreV1().Pods(kubeScratchNS).List(ctx, sel)
		for _, o := range pods.Items {
			left = append(left, "pod "+o.Name)
		}
		cms, _ := d.k.Clientset.CoreV1().ConfigMaps(kubeScratchNS).List(ctx, sel)
		for _, o := range cms.Items {
			left = append(left, "configmap "+o.Name)
		}
		nps, _ := d.k.Clientset.NetworkingV1().NetworkPolicies(kubeScratchNS).List(ctx, sel)
		for _, o := range nps.Items {
			left = append(left, "networkpolicy "+o.Name)
		}
		pvcs, _ := d.k.Clientset.CoreV1().PersistentVolumeClaims(kubeScratchNS).List(ctx, sel)
		for _, o := range pvcs.Items {
			left = append(left, "pvc "+o.Name)
		}
		vss, _ := d.k.Snapshots.SnapshotV1().VolumeSnapshots(kubeScratchNS).List(ctx, sel)
		for _, o := range vss.Items {
			left = append(left, "volumesnapshot "+o.Name)
		}
		vscs, _ := d.k.Snapshots.SnapshotV1().VolumeSnapshotContents().List(ctx, sel)
		for _, o := range vscs.Items {
			left = append(left, "volumesnapshotcontent "+o.Name)
		}
		// Pods deleted with a grace period go once the (fake) kubelet confirms.
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := d.k.Snapshots.SnapshotV1().VolumeSnapshotContents().Get(ctx, prodContent, metav1.GetOptions{}); err != nil {
		t.Errorf("production's VolumeSnapshotContent %s: %v", prodContent, err)
	}
	if vs, err := d.k.Snapshots.SnapshotV1().VolumeSnapshots(kubeDBNS).Get(ctx, prodSnapshot, metav1.GetOptions{}); err != nil || vs.DeletionTimestamp != nil {
		t.Errorf("production's VolumeSnapshot %s: %v", prodSnapshot, err)
	}
	return left
}

type kubeResult struct {
	drillJSON
	Error   string `json:"error"`
	Runtime struct {
		Kind      string `json:"kind"`
		Namespace string `json:"namespace"`
		Pod       string `json:"pod"`
		Isolation struct {
			Proof struct {
				Endpoints []struct {
					Endpoint  string `json:"endpoint"`
					Reachable bool   `json:"reachable"`
				} `json:"endpoints"`
			} `json:"proof"`
		} `json:"isolation"`
	} `json:"runtime"`
	Milestones []struct {
		Name   string    `json:"name"`
		At     time.Time `json:"at"`
		Source string    `json:"source"`
	} `json:"milestones"`
	Notes []string `json:"notes"`
}

func parseKube(t *testing.T, r cliResult) kubeResult {
	t.Helper()
	var k kubeResult
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil {
		t.Fatalf("drill output is not a result (exit %d): %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
	}
	return k
}

// The whole flow with exactly the shipped RBAC: the newest CloudNativePG VolumeSnapshot is
// copied into the scratch namespace (Retain), a PVC and a throwaway pod restore it, recovery and
// the checks run for real against the restored copy, pg_checksums runs on the stopped copy in
// an exec pod, and nothing is left: the production snapshot and its content are untouched.
func TestKubernetesDrill(t *testing.T) {
	d := startKubeDrill(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	scratch, cluster, source, diag := shippedDrillRBAC(t)
	kc := d.serviceAccount(t, "drill", scratch, cluster, source, diag)

	r := runCLI(t, ctx, "drill", "--config", d.config(t, kc, ""), "--output", "json")
	res := parseKube(t, r)
	if r.code != 0 || res.Status != "pass" {
		t.Fatalf("exit %d status %s error %q, want 0/pass\nchecks: %+v\nstderr: %s", r.code, res.Status, res.Error, res.Checks, r.stderr)
	}
	for _, name := range []string{"snapshot-integrity", "recovery", "amcheck", "checksums", "rto"} {
		if st, msg := res.check(name); st != "pass" {
			t.Errorf("check %s = %s %q, want pass", name, st, msg)
		}
	}
	// The fake kubelet has no network namespace, like a CNI that ignores NetworkPolicies: the
	// probe must have reached production's database and the API server, and said so.
	if st, msg := res.check("isolation"); st != "warn" || !strings.Contains(msg, "does not enforce NetworkPolicies") {
		t.Errorf("isolation = %s %q, want a warning that egress is open", st, msg)
	}
	reached := map[string]bool{}
	for _, e := range res.Runtime.Isolation.Proof.Endpoints {
		reached[e.Endpoint] = e.Reachable
	}
	if !reached[fmt.Sprintf("127.0.0.1:%d", d.pg.Port)] || len(reached) < 2 {
		t.Errorf("probed endpoints %v: want production's database 127.0.0.1:%d and the API server, reachable", reached, d.pg.Port)
	}
	if res.Runtime.Kind != "kubernetes" || res.Runtime.Namespace != kubeScratchNS || res.Runtime.Pod == "" {
		t.Errorf("runtime %+v", res.Runtime)
	}
	names := map[string]string{}
	for _, m := range res.Milestones {
		names[m.Name] = m.Source
	}
	for _, want := range []string{"pod-scheduled", "container-started", "database-ready", "checks-done"} {
		if _, ok := names[want]; !ok {
			t.Errorf("milestone %s missing: %v", want, res.Milestones)
		}
	}
	if names["pod-scheduled"] != "kubernetes" {
		t.Errorf("pod-scheduled comes from %q, want Kubernetes' own timestamp", names["pod-scheduled"])
	}
	if len(res.Notes) != 0 {
		t.Errorf("notes %v: the snapshot carries a backup label", res.Notes)
	}
	assertThrowawaySpec(t, d)
	if left := d.leftInCluster(t); len(left) != 0 {
		t.Errorf("left in the cluster: %v", left)
	}
}

// assertThrowawaySpec checks the objects firedrill made as the kubelet received them.
func assertThrowawaySpec(t *testing.T, d *kubeDrill) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	var server, exec *corev1.Pod
	for _, p := range d.pods {
		switch p.Labels["firedrill.io/role"] {
		case "throwaway":
			server = p
		case "exec":
			exec = p
		}
	}
	if server == nil || exec == nil {
		t.Fatalf("pods seen: %d, want the throwaway and an exec pod", len(d.pods))
	}
	for _, p := range []*corev1.Pod{server, exec} {
		s := p.Spec
		if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken || s.EnableServiceLinks == nil || *s.EnableServiceLinks {
			t.Errorf("%s: a ServiceAccount token or service links are mounted", p.Name)
		}
		if s.SecurityContext == nil || s.SecurityContext.RunAsNonRoot == nil || !*s.SecurityContext.RunAsNonRoot || s.SecurityContext.RunAsUser == nil || *s.SecurityContext.RunAsUser != 999 {
			t.Errorf("%s: pod security context %+v", p.Name, s.SecurityContext)
		}
		for _, c := range append(append([]corev1.Container{}, s.InitContainers...), s.Containers...) {
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
				t.Errorf("%s/%s: container security context %+v", p.Name, c.Name, sc)
			}
		}
		if p.Labels["app.kubernetes.io/managed-by"] != "firedrill" || p.Labels["firedrill.io/drill-id"] == "" {
			t.Errorf("%s: labels %v", p.Name, p.Labels)
		}
	}
	var claim string
	for _, v := range server.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim == "" {
		t.Errorf("the throwaway mounts no PVC")
	}
	if len(server.Spec.InitContainers) != 2 || server.Spec.Containers[0].Env[0].Value != "/var/lib/postgresql/data/"+kubeDataSubdir {
		t.Errorf("throwaway containers: %d init, env %v", len(server.Spec.InitContainers), server.Spec.Containers[0].Env)
	}
}

// A failure in each phase ends the drill with exit 3, the phase and what to do, and nothing is
// left behind.
func TestKubernetesDrillFailures(t *testing.T) {
	d := startKubeDrill(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	scratch, cluster, source, diag := shippedDrillRBAC(t)
	kc := d.serviceAccount(t, "drill", scratch, cluster, source, diag)

	cases := []struct {
		name, extra string
		setup       func()
		code        int
		want        []string
	}{
		{"image cannot be pulled", "        image: registry.invalid/postgres:15", func() { d.cluster.pullFails = "registry.invalid/postgres:15" }, 3,
			[]string{"phase start", "registry.invalid/postgres:15", "restore.kubernetes.image"}},
		{"storage class of another driver", "        storageClass: other", nil, 3,
			[]string{"StorageClass other", "other.csi.example.com", kubeDriver, "restore.kubernetes.storageClass"}},
		{"no snapshot matches", "        snapshotSelector: cnpg.io/cluster=nothing", nil, 3,
			[]string{"no complete snapshot"}},
		{"isolation required", "        requireIsolation: true", nil, 1,
			[]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			defer func() { d.cluster.pullFails = "" }()
			cfg := d.config(t, kc, "")
			if tc.extra != "" {
				b, _ := os.ReadFile(cfg)
				key := strings.SplitN(strings.TrimSpace(tc.extra), ":", 2)[0] + ":"
				lines := strings.Split(string(b), "\n")
				for i, l := range lines {
					if strings.HasPrefix(strings.TrimSpace(l), key) && strings.HasPrefix(l, "        ") {
						lines[i] = ""
					}
				}
				out := strings.Replace(strings.Join(lines, "\n"), "        kubeconfig:", tc.extra+"\n        kubeconfig:", 1)
				if err := os.WriteFile(cfg, []byte(out), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
			res := parseKube(t, r)
			if r.code != tc.code {
				t.Fatalf("exit %d (status %s, error %q), want %d\nstderr: %s", r.code, res.Status, res.Error, tc.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Error, w) {
					t.Errorf("error %q does not say %q", res.Error, w)
				}
			}
			if tc.name == "isolation required" {
				if st, msg := res.check("isolation"); st != "fail" || !strings.Contains(msg, "requireIsolation") {
					t.Errorf("isolation = %s %q, want fail naming restore.kubernetes.requireIsolation", st, msg)
				}
			}
			if left := d.leftInCluster(t); len(left) != 0 {
				t.Errorf("left in the cluster: %v", left)
			}
		})
	}
}

// An interrupted drill (SIGTERM while the throwaway runs) removes everything it made.
func TestKubernetesDrillInterrupted(t *testing.T) {
	d := startKubeDrill(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	scratch, cluster, source, diag := shippedDrillRBAC(t)
	kc := d.serviceAccount(t, "drill", scratch, cluster, source, diag)
	cfg := d.config(t, kc, "")

	cmd := cliCommand(ctx, "drill", "--config", cfg, "--output", "json")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the throwaway pod runs.
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		pods, _ := d.k.Clientset.CoreV1().Pods(kubeScratchNS).List(ctx, metav1.ListOptions{LabelSelector: "firedrill.io/role=throwaway"})
		if len(pods.Items) > 0 && pods.Items[0].Status.Phase == corev1.PodRunning {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("an interrupted drill exited 0\n%s", stderr.String())
	}
	if left := d.leftInCluster(t); len(left) != 0 {
		t.Errorf("left in the cluster after the interrupt: %v\n%s", left, stderr.String())
	}
}

// Least privilege, shown both ways: the drill works with exactly the shipped RBAC (above), and
// without any single rule of it, it fails (exit 3) naming the verb and the resource it lacked,
// and leaves nothing behind that it was allowed to make.
func TestKubernetesDrillRBACEachRuleNeeded(t *testing.T) {
	d := startKubeDrill(t)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	scratch, cluster, source, diag := shippedDrillRBAC(t)
	type removal struct {
		name  string
		grant func() []runtime.Object
		res   string
	}
	var removals []removal
	for i, rule := range scratch.Rules {
		removals = append(removals, removal{"scratch-" + rule.Resources[0], func() []runtime.Object {
			r := scratch.DeepCopy()
			r.Rules = append(r.Rules[:i:i], r.Rules[i+1:]...)
			return []runtime.Object{r, cluster, source, diag}
		}, rule.Resources[0]})
	}
	for i, rule := range cluster.Rules {
		removals = append(removals, removal{"cluster-" + rule.Resources[0], func() []runtime.Object {
			r := cluster.DeepCopy()
			r.Rules = append(r.Rules[:i:i], r.Rules[i+1:]...)
			return []runtime.Object{scratch, r, source, diag}
		}, rule.Resources[0]})
	}
	for i, rule := range source.Rules {
		removals = append(removals, removal{"source-" + rule.Resources[0], func() []runtime.Object {
			r := source.DeepCopy()
			r.Rules = append(r.Rules[:i:i], r.Rules[i+1:]...)
			return []runtime.Object{scratch, cluster, r, diag}
		}, rule.Resources[0]})
	}
	for _, rm := range removals {
		t.Run(rm.name, func(t *testing.T) {
			kc := d.serviceAccount(t, strings.ReplaceAll(rm.name, ".", "-"), rm.grant()...)
			r := runCLI(t, ctx, "drill", "--config", d.config(t, kc, ""), "--output", "json")
			res := parseKube(t, r)
			if r.code != 3 {
				t.Fatalf("exit %d status %s error %q without the %s rule, want 3", r.code, res.Status, res.Error, rm.name)
			}
			if !strings.Contains(res.Error, "forbidden") || !strings.Contains(res.Error, `resource "`+rm.res+`"`) || !strings.Contains(res.Error, "cannot ") {
				t.Errorf("error %q does not name the missing verb on resource %q", res.Error, rm.res)
			}
			if left := d.leftInCluster(t); len(left) != 0 {
				t.Errorf("left in the cluster: %v", left)
			}
		})
	}
}

// cliCommand is the firedrill binary with args, for tests that signal it.
func cliCommand(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, binary, args...)
}
