//go:build e2e

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/firedrill/firedrill/integration/harness"
)

// The end-to-end tests (make e2e): the whole product on a real single-node cluster with the
// real CSI snapshot machinery. Built only with -tags e2e: the cluster needs root, a few minutes
// and the e2e tools (integration/setup/gotools.sh).

const (
	e2eDBNS      = "db"
	e2eScratchNS = "firedrill-scratch"
	e2ePassword  = "e2e-secret-password"
	e2ePGUID     = 100 // the postgres user of local/postgres:15 (Debian's package)
	e2ePGGID     = 102
)

// e2e is the production side of the scenarios: a PostgreSQL pod on a CSI PVC.
type e2e struct {
	c      *harness.Cluster
	podIP  string
	dir    string
	admin  string // the admin kubeconfig
	timing map[string]time.Duration
}

func TestE2E(t *testing.T) {
	c := harness.StartCluster(t)
	e := &e2e{c: c, dir: harness.TempDir(t), admin: c.Kubeconfig, timing: map[string]time.Duration{}}
	start := time.Now()
	e.startProduction(t)
	e.timing["production database"] = time.Since(start)

	scenarios := []struct {
		name string
		run  func(*testing.T, *e2e)
	}{
		{"1-online-snapshot-drill", e2eOnlineDrill},
		{"3-crash-consistent-under-load", e2eCrashConsistent},
		{"4-damaged-snapshot", e2eDamagedSnapshot},
		{"5-failure-paths", e2eFailurePaths},
		{"6-redis-kubernetes", e2eRedisDrill},
		{"7-mariadb-kubernetes", e2eMariaDBDrill},
		{"2-helm-cronjob", e2eHelmCronJob},
	}
	for _, s := range scenarios {
		began := time.Now()
		t.Run(s.name, func(t *testing.T) { s.run(t, e) })
		e.timing[s.name] = time.Since(began)
	}
	for _, tm := range c.Timings {
		t.Logf("e2e timing: cluster start: %-45s %s", tm.Step, tm.Took.Round(10*time.Millisecond))
	}
	for name, d := range e.timing {
		t.Logf("e2e timing: %-45s %s", name, d.Round(10*time.Millisecond))
	}
}

func (e *e2e) dsn() string {
	return fmt.Sprintf("host=%s port=5432 user=postgres password=%s dbname=postgres sslmode=disable connect_timeout=5", e.podIP, e2ePassword)
}

// startProduction runs the production database: a PostgreSQL pod (data checksums on) on a PVC of
// the CSI driver's storage class, with pgbench data in it.
func (e *e2e) startProduction(t *testing.T) {
	ctx := t.Context()
	cs := e.c.Clientset
	for _, ns := range []string{e2eDBNS, e2eScratchNS} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sc := harness.ClusterStorageClass
	if _, err := cs.CoreV1().PersistentVolumeClaims(e2eDBNS).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-data"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &sc, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fsGroup := int64(e2ePGGID)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-0", Labels: map[string]string{"app": "orders"}},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{FSGroup: &fsGroup},
			Containers: []corev1.Container{{
				Name: "postgres", Image: harness.PostgresImage, ImagePullPolicy: corev1.PullNever,
				Args: []string{"-c", "listen_addresses=*", "-c", "wal_level=replica", "-c", "max_wal_size=256MB"},
				Env: []corev1.EnvVar{{Name: "POSTGRES_PASSWORD", Value: e2ePassword}, {Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"},
					{Name: "POSTGRES_INITDB_ARGS", Value: "--data-checksums"}},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "orders-data"}}}},
		},
	}
	if _, err := cs.CoreV1().Pods(e2eDBNS).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		p, err := cs.CoreV1().Pods(e2eDBNS).Get(ctx, "orders-0", metav1.GetOptions{})
		if err == nil && p.Status.PodIP != "" && p.Status.Phase == corev1.PodRunning {
			e.podIP = p.Status.PodIP
			if out, err := pgTool(ctx, "psql", e.dsn(), "-Atc", "select 1"); err == nil && strings.TrimSpace(out) == "1" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the production database pod did not start within 3m (phase %v, %v)\nkubelet:\n%s\ncsi-provisioner:\n%s",
				podPhase(p), err, e.c.Logs("kubelet", 30), e.c.Logs("csi-provisioner", 20))
		}
		time.Sleep(time.Second)
	}
	if out, err := pgTool(ctx, "pgbench", "-i", "-s", "2", "-q", e.dsn()); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	if out, err := pgTool(ctx, "pgbench", "-n", "-c", "2", "-t", "200", e.dsn()); err != nil {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}
	t.Logf("production after pgbench: %s", e.invariant(t))
}

// invariant reads pgbench's balances and history from production, for failure messages.
func (e *e2e) invariant(t *testing.T) string {
	out, err := pgTool(t.Context(), "psql", e.dsn(), "-Atc", "select count(*), sum(delta), (select sum(abalance) from pgbench_accounts), (select sum(bbalance) from pgbench_branches) from pgbench_history")
	if err != nil {
		return err.Error() + " " + out
	}
	return "history rows|sum(delta)|sum(abalance)|sum(bbalance) = " + strings.TrimSpace(out)
}

func podPhase(p *corev1.Pod) string {
	if p == nil {
		return "no pod"
	}
	return string(p.Status.Phase)
}

// pgTool runs a PostgreSQL 15 client tool of this machine.
func pgTool(ctx context.Context, tool string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, filepath.Join("/usr/lib/postgresql/15/bin", tool), args...).CombinedOutput()
	return string(out), err
}

// config writes a firedrill configuration for the production database; extraRestore is added
// under restore.kubernetes, mode is the snapshot mode.
func (e *e2e) config(t *testing.T, mode, extraKube string) string {
	t.Helper()
	cfg := fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection:
      dsn: %q
    snapshot:
      driver: csi
      mode: %s
      csi:
        kubeconfig: %s
        namespace: %s
        pvc: orders-data
        className: %s
        readyTimeout: 2m
    restore:
      runtime: kubernetes
      kubernetes:
        kubeconfig: %s
        namespace: %s
        image: %s
        subPath: pgdata
        runAsUser: %d
        fsGroup: %d
        connect: portForward
        timeouts:
          bind: 2m
          schedule: 1m
          start: 2m
          ready: 3m
%s
    objectives:
      rto: 10m
      rpo: 1000h
    checks:
      amcheck: true
      checksums: true
      rowCounts:
        min:
          public.pgbench_accounts: 200000
      sql:
        - name: balance-invariant
          query: select (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history)
          expect:
            equals: "t"
history:
  dir: %s
`, e.dsn(), mode, e.admin, e2eDBNS, harness.ClusterSnapshotClass, e.admin, e2eScratchNS, harness.PostgresImage,
		e2ePGUID, e2ePGGID, extraKube, filepath.Join(e.dir, "history"))
	p := filepath.Join(harness.TempDir(t), "firedrill.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// snapshot takes a snapshot with the CLI and returns its data VolumeSnapshot's name.
func (e *e2e) snapshot(t *testing.T, cfg string) string {
	t.Helper()
	r := runCLI(t, t.Context(), "snapshot", "--config", cfg, "--output", "json")
	if r.code != 0 {
		t.Fatalf("firedrill snapshot: exit %d\nstdout: %s\nstderr: %s\nsnapshot-controller:\n%s\ncsi-snapshotter:\n%s",
			r.code, r.stdout, r.stderr, e.c.Logs("snapshot-controller", 20), e.c.Logs("csi-snapshotter", 20))
	}
	// The data volume's cut (an online snapshot also cuts the WAL again after the backup ends).
	list, err := e.c.Snapshots.SnapshotV1().VolumeSnapshots(e2eDBNS).List(t.Context(), metav1.ListOptions{LabelSelector: "firedrill.io/volume=data"})
	if err != nil || len(list.Items) == 0 {
		t.Fatalf("no VolumeSnapshot in %s after firedrill snapshot (%v)", e2eDBNS, err)
	}
	newest := list.Items[0]
	for _, vs := range list.Items {
		if vs.CreationTimestamp.After(newest.CreationTimestamp.Time) || (vs.CreationTimestamp.Equal(&newest.CreationTimestamp) && vs.Name > newest.Name) {
			newest = vs
		}
	}
	return newest.Name
}

func (e *e2e) drill(t *testing.T, cfg string) (kubeResult, cliResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	r := runCLI(t, ctx, "drill", "--config", cfg, "--output", "json")
	return parseKube(t, r), r
}

// scratchLeft lists what is left in the scratch namespace and of the cluster's retained copies.
func (e *e2e) scratchLeft(t *testing.T) []string {
	t.Helper()
	ctx := t.Context()
	var left []string
	pods, _ := e.c.Clientset.CoreV1().Pods(e2eScratchNS).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		left = append(left, "pod/"+p.Name)
	}
	pvcs, _ := e.c.Clientset.CoreV1().PersistentVolumeClaims(e2eScratchNS).List(ctx, metav1.ListOptions{})
	for _, p := range pvcs.Items {
		left = append(left, "pvc/"+p.Name)
	}
	vss, _ := e.c.Snapshots.SnapshotV1().VolumeSnapshots(e2eScratchNS).List(ctx, metav1.ListOptions{})
	for _, v := range vss.Items {
		left = append(left, "volumesnapshot/"+v.Name)
	}
	cms, _ := e.c.Clientset.CoreV1().ConfigMaps(e2eScratchNS).List(ctx, metav1.ListOptions{LabelSelector: "firedrill.io/drill"})
	for _, m := range cms.Items {
		left = append(left, "configmap/"+m.Name)
	}
	return left
}

// waitScratchEmpty waits (bounded) for the scratch namespace to empty: PVC deletion is
// asynchronous (the provisioner deletes the volume, then the finalizer goes).
func (e *e2e) waitScratchEmpty(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		left := e.scratchLeft(t)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("left in the scratch namespace after the drill: %v", left)
			return
		}
		time.Sleep(time.Second)
	}
}

func e2eOnlineDrill(t *testing.T, e *e2e) {
	cfg := e.config(t, "online", "")
	t.Logf("production before the snapshot: %s", e.invariant(t))
	began := time.Now()
	name := e.snapshot(t, cfg)
	e.timing["1: firedrill snapshot (online)"] = time.Since(began)
	t.Logf("production after the snapshot: %s", e.invariant(t))
	vs, err := e.c.Snapshots.SnapshotV1().VolumeSnapshots(e2eDBNS).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil || vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse {
		t.Fatalf("VolumeSnapshot %s not ready: %v %+v", name, err, vs.Status)
	}
	if vs.Annotations["firedrill.io/backup-label"] == "" {
		t.Errorf("the online snapshot carries no backup label: %v", vs.Annotations)
	}

	began = time.Now()
	res, r := e.drill(t, cfg)
	e.timing["1: firedrill drill"] = time.Since(began)
	if r.code != 0 || res.Status != "pass" {
		t.Fatalf("drill: exit %d status %s error %q\nchecks: %+v\nstderr: %s\nkubelet:\n%s", r.code, res.Status, res.Error, res.Checks, r.stderr, e.c.Logs("kubelet", 40))
	}
	for _, check := range []string{"recovery", "amcheck", "checksums", "row-counts", "sql:balance-invariant", "rto"} {
		if st, msg := res.check(check); st != "pass" {
			t.Errorf("check %s = %s %q, want pass", check, st, msg)
		}
	}
	seen := map[string]bool{}
	for _, m := range res.Milestones {
		seen[m.Name] = true
	}
	for _, want := range []string{"pod-scheduled", "container-started", "database-ready", "checks-done"} {
		if !seen[want] {
			t.Errorf("milestone %s missing (phases timed from the cluster's events): %v", want, res.Milestones)
		}
	}
	t.Logf("drill phases: %+v", res.Phases)
	e.waitScratchEmpty(t)
	t.Logf("production after the drill: %s", e.invariant(t))

	// Production's snapshot is untouched and still restores: a second drill of it passes.
	vs, err = e.c.Snapshots.SnapshotV1().VolumeSnapshots(e2eDBNS).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil || vs.DeletionTimestamp != nil || vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse {
		t.Fatalf("production's VolumeSnapshot %s after the drill: %v %+v", name, err, vs)
	}
	if res2, r2 := e.drill(t, cfg); r2.code != 0 || res2.Status != "pass" {
		t.Fatalf("second drill of the same snapshot: exit %d status %s error %q", r2.code, res2.Status, res2.Error)
	}
	e.waitScratchEmpty(t)
}

// e2eSnapshotHandle returns the CSI snapshot handle behind a production VolumeSnapshot.
func (e *e2e) snapshotHandle(t *testing.T, name string) string {
	t.Helper()
	vs, err := e.c.Snapshots.SnapshotV1().VolumeSnapshots(e2eDBNS).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil || vs.Status == nil || vs.Status.BoundVolumeSnapshotContentName == nil {
		t.Fatalf("VolumeSnapshot %s: %v", name, err)
	}
	content, err := e.c.Snapshots.SnapshotV1().VolumeSnapshotContents().Get(t.Context(), *vs.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{})
	if err != nil || content.Status == nil || content.Status.SnapshotHandle == nil {
		t.Fatalf("VolumeSnapshotContent of %s: %v", name, err)
	}
	return *content.Status.SnapshotHandle
}

// A snapshot taken while pgbench writes, crash-consistent on the one volume (no backup mode,
// the snapshot is atomic), recovers and passes every check.
func e2eCrashConsistent(t *testing.T, e *e2e) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// -n: without it pgbench truncates pgbench_history before it starts, and the balance
	// invariant no longer holds on production itself.
	load := exec.CommandContext(ctx, "/usr/lib/postgresql/15/bin/pgbench", "-n", "-c", "2", "-T", "60", e.dsn())
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = load.Wait() }()
	time.Sleep(3 * time.Second) // pgbench connected and writing
	cfg := e.config(t, "crash-consistent", "")
	t.Logf("production before the snapshot: %s", e.invariant(t))
	began := time.Now()
	e.snapshot(t, cfg)
	e.timing["3: firedrill snapshot (crash-consistent, under load)"] = time.Since(began)
	cancel()
	_ = load.Wait()
	t.Logf("production after the load: %s", e.invariant(t))

	began = time.Now()
	res, r := e.drill(t, cfg)
	e.timing["3: firedrill drill"] = time.Since(began)
	if r.code != 0 || res.Status != "pass" {
		t.Fatalf("drill of a crash-consistent snapshot under load: exit %d status %s error %q\nchecks: %+v\nstderr: %s", r.code, res.Status, res.Error, res.Checks, r.stderr)
	}
	if len(res.Notes) == 0 || !strings.Contains(strings.Join(res.Notes, " "), "crash-consistent") {
		t.Errorf("notes %v: want the crash-consistent recovery said", res.Notes)
	}
	e.waitScratchEmpty(t)
}

// A snapshot damaged in the CSI driver's storage (a page of pgbench_accounts overwritten) fails
// the drill with exit 1 and a named check, not a platform error.
func e2eDamagedSnapshot(t *testing.T, e *e2e) {
	ctx := t.Context()
	cfg := e.config(t, "online", "")
	name := e.snapshot(t, cfg)
	rel, err := pgTool(ctx, "psql", e.dsn(), "-Atc", "select pg_relation_filepath('pgbench_accounts')")
	if err != nil {
		t.Fatalf("pg_relation_filepath: %v %s", err, rel)
	}
	snapDir := filepath.Join(e.c.CSIRoot, "snapshots", e.snapshotHandle(t, name))
	file := filepath.Join(snapDir, "pgdata", strings.TrimSpace(rel))
	// The snapshot is a read-only btrfs subvolume: damage at rest, as a storage fault would.
	if out, err := exec.Command("btrfs", "property", "set", "-ts", snapDir, "ro", "false").CombinedOutput(); err != nil {
		t.Fatalf("btrfs property set ro false: %v %s", err, out)
	}
	defer func() { _ = exec.Command("btrfs", "property", "set", "-ts", snapDir, "ro", "true").Run() }()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("the snapshot's copy of pgbench_accounts: %v", err)
	}
	junk := []byte(strings.Repeat("firedrill-e2e-damage!", 40))
	if _, err := f.WriteAt(junk, 3*8192+512); err != nil {
		t.Fatal(err)
	}
	f.Close()

	res, r := e.drill(t, cfg)
	if r.code != 1 || res.Status != "fail" {
		t.Fatalf("drill of a damaged snapshot: exit %d status %s error %q, want exit 1 / fail\nchecks: %+v\nstderr: %s", r.code, res.Status, res.Error, res.Checks, r.stderr)
	}
	failed := []string{}
	for _, c := range res.Checks {
		if c.Status == "fail" {
			failed = append(failed, c.Name)
		}
	}
	if !slices.ContainsFunc(failed, func(n string) bool { return slices.Contains([]string{"amcheck", "checksums", "row-counts"}, n) }) {
		t.Errorf("failed checks %v: want the damage named by amcheck or checksums", failed)
	}
	e.waitScratchEmpty(t)
	// The damaged snapshot is production's to delete; it would fail every later drill.
	if err := e.c.Snapshots.SnapshotV1().VolumeSnapshots(e2eDBNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSnapshotGone(t, name)
}

func (e *e2e) waitSnapshotGone(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := e.c.Snapshots.SnapshotV1().VolumeSnapshots(e2eDBNS).Get(t.Context(), name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("VolumeSnapshot %s not gone within 1m", name)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Failure paths of the real system, each exit 3 fast with its reason: a storage class whose
// driver cannot restore the snapshot, an image that does not exist, a pod no node can run.
func e2eFailurePaths(t *testing.T, e *e2e) {
	ctx := t.Context()
	e.snapshot(t, e.config(t, "online", "")) // a good snapshot: only the platform fails below
	other := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "other-driver"}, Provisioner: "nfs.csi.example.com"}
	if _, err := e.c.Clientset.StorageV1().StorageClasses().Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, extra string
		want        []string
		within      time.Duration
	}{
		{"storage class of another driver", "        storageClass: other-driver\n", []string{"other-driver", "nfs.csi.example.com"}, time.Minute},
		{"missing image", "        image: local/no-such-image:1\n", []string{"local/no-such-image:1", "restore.kubernetes.image"}, 2 * time.Minute},
		{"unschedulable pod", "        resources:\n          requests:\n            cpu: \"512\"\n", []string{"unschedulable", "Insufficient cpu", "restore.kubernetes.resources.requests"}, time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.config(t, "online", tc.extra)
			if tc.name == "unschedulable pod" {
				// The pod may yet be scheduled (an autoscaler could add a node): firedrill
				// reports it at restore.kubernetes.timeouts.schedule, shortened here.
				b, _ := os.ReadFile(cfg)
				b = []byte(strings.Replace(string(b), "schedule: 1m", "schedule: 20s", 1))
				if err := os.WriteFile(cfg, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "missing image" {
				cfg = e.config(t, "online", "")
				b, _ := os.ReadFile(cfg)
				b = []byte(strings.Replace(string(b), "image: "+harness.PostgresImage, "image: local/no-such-image:1", 1))
				if err := os.WriteFile(cfg, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			began := time.Now()
			res, r := e.drill(t, cfg)
			took := time.Since(began)
			e.timing["5: "+tc.name] = took
			if r.code != 3 {
				t.Fatalf("exit %d status %s error %q, want exit 3\nchecks: %+v\nstderr: %s", r.code, res.Status, res.Error, res.Checks, r.stderr)
			}
			msg := res.Error + " " + r.stderr
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not name %q", msg, w)
				}
			}
			if took > tc.within {
				t.Errorf("took %s, want a fast failure (under %s)", took.Round(time.Second), tc.within)
			}
			e.waitScratchEmpty(t)
		})
	}
}

// The chart installed with helm install (the helm library, as the helm CLI does); its drill
// CronJob triggered by hand runs the drill inside the cluster under the chart's RBAC only, with
// the in-cluster config, and the result reaches the history volume.
func e2eHelmCronJob(t *testing.T, e *e2e) {
	ctx := t.Context()
	const ns, release = "backup-ops", "ops"
	if _, err := e.c.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vals := helmValues(t, fmt.Sprintf(`
image: {repository: local/firedrill, tag: e2e, pullPolicy: Never}
config:
  history: {dir: /var/lib/firedrill/history}
  targets:
    - name: orders
      engine: postgres
      connection: {dsn: "host=%s port=5432 user=postgres dbname=postgres sslmode=disable"}
      snapshot: {driver: csi, mode: online, csi: {namespace: %s, pvc: orders-data, className: %s}}
      restore:
        runtime: kubernetes
        kubernetes: {namespace: %s, image: %s, subPath: pgdata, runAsUser: %d, fsGroup: %d, connect: podIP}
      objectives: {rto: 10m, rpo: 1000h}
      checks: {amcheck: true, checksums: true}
drills:
  orders: {schedule: "0 3 * * *", activeDeadlineSeconds: 900}
history:
  persistence: {enabled: true, storageClass: %s, size: 1Gi}
scratchNamespace: {name: %s, create: false}
rbac: {databaseNamespaces: [%s]}
gc: {enabled: false}
`, e.podIP, e2eDBNS, harness.ClusterSnapshotClass, e2eScratchNS, harness.PostgresImage, e2ePGUID, e2ePGGID,
		harness.ClusterStorageClass, e2eScratchNS, e2eDBNS))

	began := time.Now()
	helmInstall(t, e.admin, ns, release, vals)
	e.timing["2: helm install"] = time.Since(began)

	cjs, err := e.c.Clientset.BatchV1().CronJobs(ns).List(ctx, metav1.ListOptions{LabelSelector: "firedrill.io/target=orders"})
	if err != nil || len(cjs.Items) != 1 {
		t.Fatalf("the chart's drill CronJob: %v (%d found)", err, len(cjs.Items))
	}
	cj := cjs.Items[0]
	// What `kubectl create job --from=cronjob/...` does.
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-by-hand", Namespace: ns, Labels: cj.Spec.JobTemplate.Labels,
			Annotations:     map[string]string{"cronjob.kubernetes.io/instantiate": "manual"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(&cj, batchv1.SchemeGroupVersion.WithKind("CronJob"))}},
		Spec: cj.Spec.JobTemplate.Spec,
	}
	began = time.Now()
	if _, err := e.c.Clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var done *batchv1.Job
	deadline := time.Now().Add(8 * time.Minute)
	for done == nil {
		j, err := e.c.Clientset.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
		if err == nil && (j.Status.Succeeded > 0 || j.Status.Failed > 0) {
			done = j
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the drill Job did not finish within 8m\n%s", e.jobLogs(t, ns, job.Name))
		}
		time.Sleep(2 * time.Second)
	}
	e.timing["2: drill Job in the cluster"] = time.Since(began)
	logs := e.jobLogs(t, ns, job.Name)
	if done.Status.Succeeded == 0 {
		t.Fatalf("the drill Job failed:\n%s", logs)
	}
	if !strings.Contains(logs, `"status": "pass"`) && !strings.Contains(logs, `"status":"pass"`) {
		t.Errorf("the Job's output does not say pass:\n%s", logs)
	}

	// The result is in the history volume: the PVC's directory in the CSI driver's storage.
	pvcs, err := e.c.Clientset.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pvcs.Items) != 1 || pvcs.Items[0].Spec.VolumeName == "" {
		t.Fatalf("the chart's history PVC: %v %+v", err, pvcs)
	}
	pv, err := e.c.Clientset.CoreV1().PersistentVolumes().Get(ctx, pvcs.Items[0].Spec.VolumeName, metav1.GetOptions{})
	if err != nil || pv.Spec.CSI == nil {
		t.Fatalf("history PV: %v", err)
	}
	var results []string
	_ = filepath.WalkDir(filepath.Join(e.c.CSIRoot, "volumes", pv.Spec.CSI.VolumeHandle), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), `"orders"`) && strings.Contains(string(b), `"pass"`) {
				results = append(results, p)
			}
		}
		return nil
	})
	if len(results) == 0 {
		t.Errorf("no passed drill of orders in the history volume")
	}
	e.waitScratchEmpty(t)
}

// jobLogs returns the logs of the Job's pods, for its result and for failure messages.
func (e *e2e) jobLogs(t *testing.T, ns, job string) string {
	t.Helper()
	pods, err := e.c.Clientset.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "job-name=" + job})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		raw, err := e.c.Clientset.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(t.Context())
		fmt.Fprintf(&b, "pod %s (%s): %v\n%s\n", p.Name, p.Status.Phase, err, raw)
	}
	return b.String()
}

// helmInstall installs the chart as `helm install --wait=false` would, with the admin kubeconfig.
func helmInstall(t *testing.T, kubeconfig, ns, release string, vals map[string]any) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &kubeconfig, &ns
	cfg := &action.Configuration{}
	if err := cfg.Init(flags, ns, "secret", t.Logf); err != nil {
		t.Fatalf("helm: %v", err)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace = release, ns
	install.Timeout = 2 * time.Minute
	if _, err := install.Run(chrt, vals); err != nil {
		t.Fatalf("helm install: %v", err)
	}
}
