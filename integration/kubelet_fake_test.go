package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot/local"
)

// fakeCluster plays, against a real kube-apiserver, what a cluster's controllers and kubelet
// would do for a drill in the scratch namespace, and nothing more:
//   - the snapshot controller binds a VolumeSnapshot to its pre-provisioned content (both ready);
//   - the provisioner binds a PVC restored from a VolumeSnapshot;
//   - the kubelet runs a pod's containers as local processes of the PostgreSQL user: the volume
//     of a PVC restored from the snapshot is a real clone of the real snapshot the test took, the
//     ConfigMap volume holds the ConfigMap's files, and the pod's paths are mapped to those
//     directories. The containers' own commands run (the prepare script, the isolation probe,
//     postgres, the exec pods' tools), so the pod spec firedrill writes is what is tested.
//     Termination messages, pod IP (127.0.0.1), conditions and container states are set as a
//     kubelet would, and a deleted pod's server is stopped before the pod is removed.
//
// There is no network namespace: the probe reaches whatever the host reaches, as a pod does on a
// cluster whose CNI does not enforce NetworkPolicies.
type fakeCluster struct {
	core      kubernetes.Interface
	snaps     snapshotclient.Interface
	namespace string
	// clone materialises a scratch PVC's volume: a clone of the snapshot, returning the
	// volume's root directory.
	clone func(ctx context.Context, dir string) (string, error)
	// apiServer is host:port, given to pods as KUBERNETES_SERVICE_HOST/PORT.
	apiServer string
	binDir    string
	runAs     postgres.RunAs
	// pullFails names an image the kubelet cannot pull.
	pullFails string
	// onPod sees each pod as created (the test keeps the spec to assert on).
	onPod func(p *corev1.Pod)
	dir   string

	mu        sync.Mutex
	podMounts map[string]map[string]string
	volumes   map[string]string // claim -> volume root
	servers   map[string]*exec.Cmd
	done      map[string]bool
}

func newFakeCluster(t *testing.T, core kubernetes.Interface, snaps snapshotclient.Interface, ns string) *fakeCluster {
	return &fakeCluster{core: core, snaps: snaps, namespace: ns, dir: harness.TempDir(t), podMounts: map[string]map[string]string{},
		volumes: map[string]string{}, servers: map[string]*exec.Cmd{}, done: map[string]bool{}}
}

func (c *fakeCluster) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			c.tick(ctx, t)
			time.Sleep(40 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
		c.mu.Lock()
		defer c.mu.Unlock()
		for name, cmd := range c.servers {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			delete(c.servers, name)
		}
	})
}

func (c *fakeCluster) tick(ctx context.Context, t *testing.T) {
	c.bindSnapshots(ctx, t)
	c.bindClaims(ctx, t)
	pods, err := c.core.CoreV1().Pods(c.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	// A pod that is gone (deleted at once) takes its server with it.
	c.mu.Lock()
	var orphans []string
	for name := range c.servers {
		if !slices.ContainsFunc(pods.Items, func(p corev1.Pod) bool { return p.Name == name }) {
			orphans = append(orphans, name)
		}
	}
	c.mu.Unlock()
	for _, name := range orphans {
		c.kill(ctx, t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.namespace}})
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		switch {
		case p.DeletionTimestamp != nil:
			c.kill(ctx, t, p)
		case !c.seen(p.Name):
			c.run(ctx, t, p)
		}
	}
}

func (c *fakeCluster) seen(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done[name] {
		return true
	}
	c.done[name] = true
	return false
}

func (c *fakeCluster) bindSnapshots(ctx context.Context, t *testing.T) {
	l, err := c.snaps.SnapshotV1().VolumeSnapshots(c.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range l.Items {
		vs := &l.Items[i]
		if vs.Status != nil && vs.Status.ReadyToUse != nil || vs.Spec.Source.VolumeSnapshotContentName == nil {
			continue
		}
		content, err := c.snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, *vs.Spec.Source.VolumeSnapshotContentName, metav1.GetOptions{})
		if err != nil {
			continue
		}
		size := int64(1 << 30)
		content.Status = &snapshotv1.VolumeSnapshotContentStatus{SnapshotHandle: content.Spec.Source.SnapshotHandle, ReadyToUse: new(true), RestoreSize: &size}
		if _, err := c.snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(ctx, content, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
			t.Logf("fake snapshot controller: %v", err)
			continue
		}
		now := metav1.Now()
		q := resource.MustParse("1Gi")
		vs.Status = &snapshotv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &content.Name, ReadyToUse: new(true), CreationTime: &now, RestoreSize: &q}
		if _, err := c.snaps.SnapshotV1().VolumeSnapshots(c.namespace).UpdateStatus(ctx, vs, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
			t.Logf("fake snapshot controller: %v", err)
		}
	}
}

func (c *fakeCluster) bindClaims(ctx context.Context, t *testing.T) {
	l, err := c.core.CoreV1().PersistentVolumeClaims(c.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range l.Items {
		pvc := &l.Items[i]
		if pvc.DeletionTimestamp != nil && len(pvc.Finalizers) > 0 {
			// The pvc-protection controller: no pod uses it any more (the drill deletes its
			// pods first), so the finalizer goes and the claim with it.
			pvc.Finalizers = nil
			if _, err := c.core.CoreV1().PersistentVolumeClaims(c.namespace).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
				t.Logf("fake pvc-protection: %v", err)
			}
			continue
		}
		if pvc.Status.Phase == corev1.ClaimBound || pvc.DeletionTimestamp != nil {
			continue
		}
		pvc.Status.Phase = corev1.ClaimBound
		pvc.Status.Capacity = pvc.Spec.Resources.Requests
		if _, err := c.core.CoreV1().PersistentVolumeClaims(c.namespace).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
			t.Logf("fake provisioner: %v", err)
		}
	}
}

// volume returns the local root of a claim's volume, cloning the snapshot on first use.
func (c *fakeCluster) volume(ctx context.Context, claim string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.volumes[claim]; ok {
		return v, nil
	}
	dir := filepath.Join(c.dir, "pv-"+claim)
	root, err := c.clone(ctx, dir)
	if err != nil {
		return "", err
	}
	c.volumes[claim] = root
	return root, nil
}

// mounts maps the pod's mount paths to local directories.
func (c *fakeCluster) mounts(ctx context.Context, p *corev1.Pod, ctr *corev1.Container) (map[string]string, error) {
	byVolume := map[string]string{}
	for _, v := range p.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			root, err := c.volume(ctx, v.PersistentVolumeClaim.ClaimName)
			if err != nil {
				return nil, err
			}
			byVolume[v.Name] = root
		case v.ConfigMap != nil:
			dir := filepath.Join(c.dir, p.Name+"-cm-"+v.Name)
			cm, err := c.core.CoreV1().ConfigMaps(p.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			byVolume[v.Name] = dir
			defer func() { // after every mount is known: the files' paths are mapped too
				for k, s := range cm.Data {
					_ = os.WriteFile(filepath.Join(dir, k), []byte(c.mapPaths(s, p)), 0o644)
				}
				for k, b := range cm.BinaryData {
					_ = os.WriteFile(filepath.Join(dir, k), b, 0o644)
				}
			}()
		case v.EmptyDir != nil:
			dir := filepath.Join(c.dir, p.Name+"-"+v.Name)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
			if err := c.runAs.Chown(dir); err != nil {
				return nil, err
			}
			byVolume[v.Name] = dir
		}
	}
	m := map[string]string{}
	for _, vm := range ctr.VolumeMounts {
		if d, ok := byVolume[vm.Name]; ok {
			m[vm.MountPath] = d
		}
	}
	c.mu.Lock()
	c.podMounts[p.Name] = m
	c.mu.Unlock()
	return m, nil
}

// mapPaths rewrites the pod's mount paths (longest first) and its termination log.
func (c *fakeCluster) mapPaths(s string, p *corev1.Pod) string {
	c.mu.Lock()
	m := c.podMounts[p.Name]
	c.mu.Unlock()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	// One pass: a mapped path must not be mapped again.
	pairs := []string{"/dev/termination-log", filepath.Join(c.dir, p.Name+"-termination-log")}
	for _, k := range keys {
		pairs = append(pairs, k, m[k])
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// runContainer runs one container's command to completion (init containers, exec pods).
func (c *fakeCluster) runContainer(ctx context.Context, p *corev1.Pod, ctr *corev1.Container) (string, int, error) {
	if _, err := c.mounts(ctx, p, ctr); err != nil {
		return "", -1, err
	}
	term := filepath.Join(c.dir, p.Name+"-termination-log")
	_ = os.WriteFile(term, nil, 0o666)
	_ = os.Chmod(term, 0o666)
	cmd := c.command(ctx, p, ctr)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code, err = ee.ExitCode(), nil
	}
	msg, _ := os.ReadFile(term)
	if len(msg) == 0 && ctr.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && code != 0 {
		msg = out
	}
	return string(msg), code, err
}

func (c *fakeCluster) command(ctx context.Context, p *corev1.Pod, ctr *corev1.Container) *exec.Cmd {
	argv := make([]string, 0, len(ctr.Command)+len(ctr.Args))
	for _, a := range append(append([]string{}, ctr.Command...), ctr.Args...) {
		argv = append(argv, c.mapPaths(a, p))
	}
	path := c.binDir + ":/usr/sbin:/usr/bin:/sbin:/bin"
	if bin, err := exec.LookPath(argv[0]); err == nil {
		argv[0] = bin
	} else if _, err := os.Stat(filepath.Join(c.binDir, argv[0])); err == nil {
		argv[0] = filepath.Join(c.binDir, argv[0])
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// The container's user, as the kubelet would run it (signals reach the process itself).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.runAs.Credential()}
	host, port, _ := strings.Cut(c.apiServer, ":")
	cmd.Env = []string{"PATH=" + path, "KUBERNETES_SERVICE_HOST=" + host, "KUBERNETES_SERVICE_PORT=" + port}
	for _, e := range ctr.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+c.mapPaths(e.Value, p))
	}
	return cmd
}

func (c *fakeCluster) run(ctx context.Context, t *testing.T, p *corev1.Pod) {
	if c.onPod != nil {
		c.onPod(p.DeepCopy())
	}
	// Bound to a node, as the scheduler does: a bound pod's deletion waits for its kubelet.
	if err := c.core.CoreV1().Pods(p.Namespace).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
		Target: corev1.ObjectReference{Kind: "Node", Name: "fake-node"}}, metav1.CreateOptions{}); err != nil {
		t.Logf("fake scheduler: bind %s: %v", p.Name, err)
	}
	now := metav1.Now()
	st := corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now}}}
	for _, ctr := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if ctr.Image == c.pullFails {
			st.ContainerStatuses = []corev1.ContainerStatus{{Name: ctr.Name, Image: ctr.Image, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "ErrImagePull", Message: "rpc error: pull access denied for " + ctr.Image}}}}
			c.setStatus(ctx, t, p, st)
			return
		}
	}
	for i := range p.Spec.InitContainers {
		ctr := &p.Spec.InitContainers[i]
		msg, code, err := c.runContainer(ctx, p, ctr)
		if err != nil {
			msg, code = err.Error(), 128
		}
		fin := metav1.Now()
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{Name: ctr.Name, Image: ctr.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), Message: msg, FinishedAt: fin, Reason: reason(code)}}})
		if code != 0 {
			st.Phase = corev1.PodFailed
			c.setStatus(ctx, t, p, st)
			return
		}
	}
	if _, ok := p.Labels["firedrill.io/role"]; ok && p.Labels["firedrill.io/role"] == "exec" {
		ctr := &p.Spec.Containers[0]
		msg, code, err := c.runContainer(ctx, p, ctr)
		if err != nil {
			msg, code = err.Error(), 128
		}
		t.Logf("fake kubelet: exec pod %s: %v exited %d: %s", p.Name, ctr.Command[4:], code, msg)
		st.Phase = corev1.PodSucceeded
		if code != 0 {
			st.Phase = corev1.PodFailed
		}
		st.ContainerStatuses = []corev1.ContainerStatus{{Name: ctr.Name, Image: ctr.Image, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), Message: msg, FinishedAt: metav1.Now(), Reason: reason(code)}}}}
		c.setStatus(ctx, t, p, st)
		return
	}
	ctr := &p.Spec.Containers[0]
	if _, err := c.mounts(ctx, p, ctr); err != nil {
		t.Logf("fake kubelet: %v", err)
		return
	}
	cmd := c.command(context.Background(), p, ctr)
	logf, _ := os.Create(filepath.Join(c.dir, p.Name+".log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Logf("fake kubelet: start %s: %v", p.Name, err)
		return
	}
	c.mu.Lock()
	c.servers[p.Name] = cmd
	c.mu.Unlock()
	started := metav1.Now()
	st.Phase = corev1.PodRunning
	st.PodIP, st.HostIP = "127.0.0.1", "127.0.0.1"
	st.StartTime = &started
	st.ContainerStatuses = []corev1.ContainerStatus{{Name: ctr.Name, Image: ctr.Image, Ready: true, Started: new(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: started})
	c.setStatus(ctx, t, p, st)
}

func reason(code int) string {
	if code == 0 {
		return "Completed"
	}
	return "Error"
}

func (c *fakeCluster) setStatus(ctx context.Context, t *testing.T, p *corev1.Pod, st corev1.PodStatus) {
	cur, err := c.core.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		return
	}
	cur.Status = st
	if _, err := c.core.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		t.Logf("fake kubelet: status of %s: %v", p.Name, err)
	}
}

// kill stops a deleted pod's server as the kubelet would (SIGTERM: PostgreSQL's smart
// shutdown), then removes the pod.
func (c *fakeCluster) kill(ctx context.Context, t *testing.T, p *corev1.Pod) {
	c.mu.Lock()
	cmd := c.servers[p.Name]
	delete(c.servers, p.Name)
	c.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	zero := int64(0)
	if err := c.core.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && ctx.Err() == nil {
		t.Logf("fake kubelet: delete %s: %v", p.Name, err)
	}
}

// cloneSnapshot returns the fake cluster's clone function for a local snapshot: the volume's
// root holds the data directory under subPath.
func cloneSnapshot(repoDir, target, id, subPath string, runAs postgres.RunAs) func(ctx context.Context, dir string) (string, error) {
	return func(ctx context.Context, dir string) (string, error) {
		repo := local.NewForTarget(repoDir, target, 2)
		res, err := repo.Clone(ctx, id, filepath.Join(dir, "clone"), nil)
		if err != nil {
			return "", fmt.Errorf("while cloning %s: %w", id, err)
		}
		root := filepath.Join(dir, "volume")
		if err := os.MkdirAll(root, 0o755); err != nil {
			return "", err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.Rename(res.DataDir, filepath.Join(root, subPath)); err != nil {
			return "", err
		}
		if err := runAs.ChownTree(root); err != nil {
			return "", err
		}
		return root, nil
	}
}
