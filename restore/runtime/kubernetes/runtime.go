package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	snapshotv1client "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/typed/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/runtime/local"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/source/volumesnapshot"
)

// Name is the runtime's restore.runtime value.
const Name = "kubernetes"

// Connect modes (restore.kubernetes.connect).
const (
	ConnectAuto        = "auto"
	ConnectPodIP       = "podIP"
	ConnectPortForward = "portForward"
)

// Clients are the Kubernetes clients a drill uses, built once by the caller.
type Clients struct {
	Core      kubernetes.Interface
	Snapshots snapshotv1client.SnapshotV1Interface
	// Rest is the configuration port-forwarding dials with.
	Rest *rest.Config
	// InCluster is true when firedrill runs in a pod (pod IPs are reachable).
	InCluster bool
}

// Options are restore.kubernetes's keys, resolved.
type Options struct {
	Namespace          string
	Image              string
	RunAsUser, FSGroup int64
	SubPath            string
	Port               int
	Connect            string
	Requests, Limits   corev1.ResourceList
	RequireIsolation   bool
	// ProbeTargets are production's endpoints (host:port) the throwaway must not reach: the
	// database's, and restore.kubernetes.probeTargets. The API server is always probed.
	ProbeTargets []string
	// RunnerLabels / RunnerCIDR are who the NetworkPolicy admits (see podSpec).
	RunnerLabels map[string]string
	RunnerCIDR   string
	// Schedule bounds the wait for the pod to be scheduled (and its PVCs bound), Start for its
	// containers to start, Ready for recovery (the drill's restore.local.startTimeout applies
	// on top).
	Schedule, Start, Ready time.Duration
	Now                    func() time.Time
	Log                    *slog.Logger
}

// Runtime starts throwaway pods on scratch PVCs.
type Runtime struct {
	c Clients
	o Options
	// runs numbers the drill's one-shot pods (Run).
	runs atomic.Int64
}

// New returns the runtime.
func New(c Clients, o Options) *Runtime {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Connect == "" || o.Connect == ConnectAuto {
		o.Connect = ConnectPortForward
		if c.InCluster {
			o.Connect = ConnectPodIP
		}
	}
	return &Runtime{c: c, o: o}
}

// Drills says the runtime restores CSI snapshots (scratch PVCs), nothing else.
func (r *Runtime) Drills(driver string) error {
	if driver != csi.DriverName {
		return fmt.Errorf("%w: restore.runtime kubernetes restores CSI VolumeSnapshots into scratch PVCs; target's snapshot.driver is %q: use restore.runtime local or docker for it", drill.ErrUnsupported, driver)
	}
	return nil
}

// ScratchOwner: nothing is materialised locally, the scratch directory stays firedrill's.
func (r *Runtime) ScratchOwner(string) (postgres.RunAs, error) { return postgres.RunAs{}, nil }

// Start creates the ConfigMap, the NetworkPolicy and the pod. It does not wait: WaitReady does.
func (r *Runtime) Start(ctx context.Context, s drill.StartSpec) (drill.Throwaway, error) {
	if s.Copy == nil || len(s.Copy.Volumes) == 0 {
		return nil, fmt.Errorf("restore.runtime kubernetes needs scratch PVCs, but the backup was materialised as %q: use snapshot.driver csi", s.DataDir)
	}
	image := r.o.Image
	if image == "" {
		if s.Major == "" {
			return nil, fmt.Errorf("phase start: snapshot %s does not say its PostgreSQL version: set restore.kubernetes.image (such as postgres:16)", s.Snapshot.ID)
		}
		image = "postgres:" + s.Major
	}
	p := podSpec{
		Name: "firedrill-" + s.DrillID, Namespace: r.o.Namespace, DrillID: s.DrillID, Target: s.Target, Image: image,
		RunAsUser: r.o.RunAsUser, FSGroup: r.o.FSGroup, SubPath: r.o.SubPath, Port: r.o.Port, Volumes: s.Copy.Volumes,
		Requests: r.o.Requests, Limits: r.o.Limits, ProbeTargets: r.o.ProbeTargets,
		RunnerLabels: r.o.RunnerLabels, RunnerCIDR: r.o.RunnerCIDR, Keep: s.Keep,
	}
	t := &Pod{r: r, p: p, s: s, created: map[string]bool{}, ctx: context.WithoutCancel(ctx)}
	if err := t.create(ctx, p.configMap(s.Files), p.serverPod()); err != nil {
		return nil, err
	}
	return t, nil
}

// create makes the throwaway's ConfigMap, its NetworkPolicy and its pod; what fails half way
// is removed.
func (t *Pod) create(ctx context.Context, cm *corev1.ConfigMap, pod *corev1.Pod) error {
	p, core := t.p, t.r.c.Core.CoreV1()
	if _, err := core.ConfigMaps(p.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("phase start: while creating ConfigMap %s/%s: %w", p.Namespace, p.Name, err)
	}
	t.created["ConfigMap"] = true
	if _, err := t.r.c.Core.NetworkingV1().NetworkPolicies(p.Namespace).Create(ctx, p.networkPolicy(), metav1.CreateOptions{}); err != nil {
		return errors.Join(fmt.Errorf("phase start: while creating NetworkPolicy %s/%s: %w", p.Namespace, p.Name, err), t.Remove())
	}
	t.created["NetworkPolicy"] = true
	if _, err := core.Pods(p.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return errors.Join(fmt.Errorf("phase start: while creating pod %s/%s: %w", p.Namespace, p.Name, err), t.Remove())
	}
	t.created["Pod"] = true
	return nil
}

// Pod is a running throwaway pod.
type Pod struct {
	r       *Runtime
	p       podSpec
	s       drill.StartSpec
	ctx     context.Context
	created map[string]bool

	mu         sync.Mutex
	last       *corev1.Pod
	host       string
	port       int
	stopFwd    func()
	probe      []probeLine
	milestones []reports.Milestone
	execs      int
	isolation  *reports.Isolation
}

// DataDir is the copy's data directory as the pod's tools see it.
func (t *Pod) DataDir() string { return t.p.DataDir() }

// Milestones are the pod's moments by Kubernetes' timestamps.
func (t *Pod) Milestones() []reports.Milestone { return t.milestones }

func (t *Pod) get(ctx context.Context) (*corev1.Pod, error) {
	pod, err := t.r.c.Core.CoreV1().Pods(t.p.Namespace).Get(ctx, t.p.Name, metav1.GetOptions{})
	if err == nil {
		t.mu.Lock()
		t.last = pod
		t.mu.Unlock()
	}
	return pod, err
}

// WaitReady waits for the pod to be scheduled, its containers to start and the database to
// leave recovery, and turns what stops it into an error a user can act on.
func (t *Pod) WaitReady(ctx context.Context, status func(string)) error {
	if err := t.waitPhase(ctx, "schedule", t.r.o.Schedule, status, scheduled); err != nil {
		return err
	}
	if err := t.waitPhase(ctx, "start", t.r.o.Start, status, running); err != nil {
		return err
	}
	pod := t.last
	if err := t.connectAddr(ctx, pod); err != nil {
		return err
	}
	ready := postgres.Readiness{
		ConnString: t.connString(t.s.Superuser, "postgres"), User: t.s.Superuser,
		Running: func() bool {
			p, err := t.get(ctx)
			return err == nil && p.Status.Phase == corev1.PodRunning
		},
		ExitDetail: func() string { return strings.Join(t.LogEvidence(20), "\n") },
		Where:      "in pod " + t.p.Namespace + "/" + t.p.Name,
	}
	rctx, cancel := context.WithTimeout(ctx, t.r.o.Ready)
	defer cancel()
	if err := ready.Wait(rctx, status); err != nil {
		if rctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("phase ready: the database in pod %s/%s did not finish recovery within %s (restore.kubernetes.timeouts.ready): %w", t.p.Namespace, t.p.Name, t.r.o.Ready, err)
		}
		return err
	}
	t.milestones = append(t.milestones, reports.Milestone{Name: "database-ready", At: t.r.o.Now().UTC(), Source: "firedrill"})
	return nil
}

// podFailure is why a pod will not become ready: cause is postgres.ErrServerExited when the
// copy itself did not recover (the drill's recovery fails, exit 1), drill.ErrPlatform when
// the platform could not run the throwaway (exit 3).
type podFailure struct {
	cause error
	msg   string
}

type podCheck func(*corev1.Pod) (done bool, failure *podFailure)

func platform(format string, a ...any) *podFailure {
	return &podFailure{cause: drill.ErrPlatform, msg: fmt.Sprintf(format, a...)}
}

func damaged(format string, a ...any) *podFailure {
	return &podFailure{cause: postgres.ErrServerExited, msg: fmt.Sprintf(format, a...)}
}

func scheduled(p *corev1.Pod) (bool, *podFailure) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			if c.Status == corev1.ConditionTrue {
				return true, nil
			}
			if c.Reason == corev1.PodReasonUnschedulable {
				return false, nil // may still be scheduled: reported at the timeout
			}
		}
	}
	return p.Spec.NodeName != "" && p.Status.Phase != corev1.PodPending, nil
}

func running(p *corev1.Pod) (bool, *podFailure) {
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff" || w.Reason == "InvalidImageName") {
			return false, platform("image %s cannot be pulled (%s: %s): set restore.kubernetes.image to an image the cluster can pull", cs.Image, w.Reason, w.Message)
		}
		if term := cs.State.Terminated; term != nil && term.ExitCode != 0 {
			msg := fmt.Sprintf("container %s exited with code %d (%s): %s", cs.Name, term.ExitCode, term.Reason, lastLines(term.Message, 15))
			if cs.Name == ServerContainer || cs.Name == EngineContainer || (cs.Name == PrepareContainer && term.ExitCode == prepareDamaged) {
				// The copy itself: the server exited, or its pg_control cannot be read.
				return false, damaged("%s", msg)
			}
			return false, platform("%s", msg)
		}
		if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			return false, platform("container %s is crash-looping: %s", cs.Name, w.Message)
		}
	}
	switch p.Status.Phase {
	case corev1.PodFailed:
		return false, platform("the pod failed: %s %s", p.Status.Reason, p.Status.Message)
	case corev1.PodSucceeded:
		return false, damaged("the server exited")
	}
	return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", nil
}

func (t *Pod) waitPhase(ctx context.Context, phase string, timeout time.Duration, status func(string), check podCheck) error {
	status(fmt.Sprintf("waiting for pod %s/%s to %s", t.p.Namespace, t.p.Name, phase))
	var failure *podFailure
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pod, err := t.get(ctx)
		if err != nil {
			var status apierrors.APIStatus
			if ctx.Err() != nil || !errors.As(err, &status) {
				// Not an answer of the API server (a dropped connection, or the client's rate
				// limiter refusing a wait that would pass the phase's deadline): read again;
				// the phase's timeout reports a pod that never gets there.
				return false, nil
			}
			return false, fmt.Errorf("phase %s: while reading pod %s/%s: %w", phase, t.p.Namespace, t.p.Name, err)
		}
		done, f := check(pod)
		failure = f
		return done || f != nil, nil
	})
	if err == nil && failure != nil {
		return fmt.Errorf("%w: phase %s: pod %s/%s: %s", failure.cause, phase, t.p.Namespace, t.p.Name, failure.msg)
	}
	if err != nil && ctx.Err() == nil && wait.Interrupted(err) {
		return fmt.Errorf("%w: phase %s: pod %s/%s did not %s within %s (restore.kubernetes.timeouts.%s): %s", drill.ErrPlatform, phase, t.p.Namespace, t.p.Name, phase, timeout, phase, t.why(ctx))
	}
	if err == nil {
		t.record(phase)
	}
	return err
}

// why explains a pod that is stuck: unschedulable, a PVC that does not bind, its events.
func (t *Pod) why(ctx context.Context) string {
	var reasons []string
	if t.last != nil {
		for _, c := range t.last.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue && c.Message != "" {
				reasons = append(reasons, "unschedulable: "+c.Message+" (lower restore.kubernetes.resources.requests, or free capacity)")
			}
		}
		for _, cs := range append(append([]corev1.ContainerStatus{}, t.last.Status.InitContainerStatuses...), t.last.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" {
				reasons = append(reasons, fmt.Sprintf("container %s waiting: %s %s", cs.Name, w.Reason, w.Message))
			}
		}
	}
	for _, v := range t.p.Volumes {
		pvc, err := t.r.c.Core.CoreV1().PersistentVolumeClaims(v.Namespace).Get(ctx, v.Claim, metav1.GetOptions{})
		if err == nil && pvc.Status.Phase != corev1.ClaimBound {
			reasons = append(reasons, fmt.Sprintf("PVC %s/%s is %s: %s", v.Namespace, v.Claim, pvc.Status.Phase,
				volumesnapshot.LastEvent(ctx, t.r.c.Core, v.Namespace, "PersistentVolumeClaim", v.Claim)))
		}
	}
	reasons = append(reasons, "pod events: "+volumesnapshot.LastEvent(ctx, t.r.c.Core, t.p.Namespace, "Pod", t.p.Name))
	return strings.Join(reasons, "; ")
}

// record keeps Kubernetes' own timestamps of the phase just reached.
func (t *Pod) record(phase string) {
	p := t.last
	if p == nil {
		return
	}
	add := func(name string, at metav1.Time) {
		if !at.IsZero() {
			t.milestones = append(t.milestones, reports.Milestone{Name: name, At: at.UTC(), Source: "kubernetes"})
		}
	}
	switch phase {
	case "schedule":
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
				add("pod-scheduled", c.LastTransitionTime)
			}
		}
	case "start":
		for _, cs := range p.Status.InitContainerStatuses {
			if cs.Name == ProbeContainer && cs.State.Terminated != nil {
				t.probe = parseProbe(cs.State.Terminated.Message)
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == t.p.serverContainer() && cs.State.Running != nil {
				add("container-started", cs.State.Running.StartedAt)
			}
		}
	}
}

// connectAddr decides how firedrill reaches the server: the pod's IP in-cluster, a
// port-forward through the API server from outside.
func (t *Pod) connectAddr(ctx context.Context, pod *corev1.Pod) error {
	if t.r.o.Connect == ConnectPodIP {
		t.host, t.port = pod.Status.PodIP, t.p.Port
		return nil
	}
	port, stop, err := portForward(ctx, t.r.c, t.p.Namespace, t.p.Name, t.p.Port)
	if err != nil {
		return fmt.Errorf("phase ready: while port-forwarding to pod %s/%s (restore.kubernetes.connect: podIP when firedrill runs in the cluster): %w", t.p.Namespace, t.p.Name, err)
	}
	t.host, t.port, t.stopFwd = "127.0.0.1", port, stop
	return nil
}

func (t *Pod) connString(user, db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=5", t.host, t.port, user, db)
}

// Connect opens a connection to one database of the throwaway.
func (t *Pod) Connect(ctx context.Context, database string) (*pgx.Conn, error) {
	return postgres.ConnectCopy(ctx, t.connString(t.s.Superuser, database))
}

// Databases lists the throwaway's databases that accept connections.
func (t *Pod) Databases(ctx context.Context) ([]string, error) {
	conn, err := t.Connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return postgres.Databases(ctx, conn)
}

// Running reports whether the server pod still runs.
func (t *Pod) Running() bool {
	p, err := t.get(t.ctx)
	return err == nil && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning
}

// Stop deletes the server pod with a grace period (the kubelet's SIGTERM is PostgreSQL's smart
// shutdown, and no client is left), waits for it to go, then reads pg_control on the stopped
// copy to tell whether it shut down cleanly.
func (t *Pod) Stop(grace time.Duration) (bool, error) {
	ctx := t.ctx
	t.closeForward()
	secs := int64(grace.Seconds())
	err := t.r.c.Core.CoreV1().Pods(t.p.Namespace).Delete(ctx, t.p.Name, metav1.DeleteOptions{GracePeriodSeconds: &secs})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("while deleting pod %s/%s: %w", t.p.Namespace, t.p.Name, err)
	}
	if err := t.waitGone(ctx, t.p.Name, grace+30*time.Second); err != nil {
		return false, err
	}
	out, code, err := t.Exec(ctx, "pg_controldata", t.p.DataDir())
	if err != nil || code != 0 {
		return false, nil
	}
	return cleanlyShutDown(string(out)), nil
}

// cleanlyShutDown reads pg_controldata's "Database cluster state" line.
func cleanlyShutDown(controldata string) bool {
	for _, l := range strings.Split(controldata, "\n") {
		if v, ok := strings.CutPrefix(l, "Database cluster state:"); ok {
			v = strings.TrimSpace(v)
			return v == "shut down" || v == "shut down in recovery"
		}
	}
	return false
}

func (t *Pod) waitGone(ctx context.Context, name string, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pod, err := t.r.c.Core.CoreV1().Pods(t.p.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err == nil && name == t.p.Name {
			t.mu.Lock()
			t.last = pod // its containers' last states: how the server exited
			t.mu.Unlock()
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("pod %s/%s was not gone %s after its deletion (is its node's kubelet running?): %w", t.p.Namespace, name, timeout, err)
	}
	return nil
}

// Exec runs a tool of the engine on the stopped copy in a pod of its own, and returns what it
// printed (up to 4 KiB, the termination message's limit) and its exit code.
func (t *Pod) Exec(ctx context.Context, name string, args ...string) ([]byte, int, error) {
	t.execs++
	return t.r.runPod(ctx, t.p, fmt.Sprintf("%s-exec-%d", t.p.Name, t.execs), append([]string{name}, args...))
}

// runPod runs argv to completion in an exec pod of p named name, deletes the pod, and returns
// what the tool printed (up to 4 KiB, the termination message's limit) and its exit code.
func (r *Runtime) runPod(ctx context.Context, p podSpec, podName string, argv []string) ([]byte, int, error) {
	name := argv[0]
	pods := r.c.Core.CoreV1().Pods(p.Namespace)
	if _, err := pods.Create(ctx, p.execPod(podName, argv), metav1.CreateOptions{}); err != nil {
		return nil, -1, fmt.Errorf("while creating pod %s/%s to run %s: %w", p.Namespace, podName, name, err)
	}
	defer func() {
		zero := int64(0)
		_ = pods.Delete(context.WithoutCancel(ctx), podName, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	}()
	var term *corev1.ContainerStateTerminated
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, r.o.Start+r.o.Schedule, true, func(ctx context.Context) (bool, error) {
		pod, err := pods.Get(ctx, podName, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("while reading pod %s/%s: %w", p.Namespace, podName, err)
		}
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.State.Terminated != nil {
				term = cs.State.Terminated
				return true, nil
			}
			if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff" || w.Reason == "InvalidImageName") {
				return false, fmt.Errorf("%w: image %s cannot be pulled (%s: %s): set restore.kubernetes.image to an image the cluster can pull", drill.ErrPlatform, cs.Image, w.Reason, w.Message)
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, -1, fmt.Errorf("while running %s in pod %s/%s: %w", name, p.Namespace, podName, err)
	}
	return []byte(term.Message), int(term.ExitCode), nil
}

// BinDir: the tools are on the image's PATH.
func (t *Pod) BinDir() string { return "" }

func (t *Pod) closeForward() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopFwd != nil {
		t.stopFwd()
		t.stopFwd = nil
	}
}

// Remove deletes the pod (at once), its ConfigMap and its NetworkPolicy, and any exec pod.
func (t *Pod) Remove() error {
	t.closeForward()
	ctx := t.ctx
	sel := metav1.ListOptions{LabelSelector: volumesnapshot.LabelManagedBy + "=" + volumesnapshot.ManagedByValue + "," + volumesnapshot.LabelDrillID + "=" + t.p.DrillID}
	_, err := deleteThrowaways(ctx, t.r.c.Core, t.p.Namespace, sel, false)
	return err
}

// ServerLog names where the server's log is: the pod's.
func (t *Pod) ServerLog() string {
	return fmt.Sprintf("kubectl logs -n %s %s -c %s", t.p.Namespace, t.p.Name, t.p.serverContainer())
}

// LogEvidence returns the server's last log lines: from the kubelet when it can be reached,
// else the container's termination message.
func (t *Pod) LogEvidence(n int) []string {
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	tail := int64(n)
	b, err := t.r.c.Core.CoreV1().Pods(t.p.Namespace).GetLogs(t.p.Name, &corev1.PodLogOptions{Container: t.p.serverContainer(), TailLines: &tail}).DoRaw(ctx)
	if err == nil && len(b) > 0 {
		return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	}
	if t.last != nil {
		for _, cs := range append(append([]corev1.ContainerStatus{}, t.last.Status.InitContainerStatuses...), t.last.Status.ContainerStatuses...) {
			if cs.State.Terminated != nil && cs.State.Terminated.Message != "" && cs.Name != ProbeContainer {
				return strings.Split(lastLines(cs.State.Terminated.Message, n), "\n")
			}
		}
	}
	return []string{fmt.Sprintf("(no log: %v)", err)}
}

// Describe says where and how the server ran.
func (t *Pod) Describe() *reports.Runtime {
	node := ""
	if t.last != nil {
		node = t.last.Spec.NodeName
	}
	if t.isolation == nil {
		t.isolation = &reports.Isolation{
			Namespaces: []string{"pod"}, UID: int(t.p.RunAsUser), GID: int(t.p.FSGroup), User: fmt.Sprintf("uid %d", t.p.RunAsUser), UserFrom: "restore.kubernetes.runAsUser",
			Filesystem: fmt.Sprintf("pod of image %s: read-only root, all capabilities dropped, no ServiceAccount token, no service links; only the drill's scratch PVCs mounted", t.p.Image),
		}
	}
	return &reports.Runtime{Kind: Name, EngineVersion: t.s.EngineVersion, RunAs: fmt.Sprintf("uid %d, fsGroup %d", t.p.RunAsUser, t.p.FSGroup),
		Listen: net.JoinHostPort(t.host, portString(t.port)), NetworkIsolated: t.egressDenied(), Isolation: t.isolation,
		Namespace: t.p.Namespace, Pod: t.p.Name, Node: node}
}

func (t *Pod) egressDenied() bool {
	if len(t.probe) == 0 {
		return false
	}
	for _, l := range t.probe {
		if l.open {
			return false
		}
	}
	return true
}

// Kept lists what --keep left in the cluster.
func (t *Pod) Kept() *reports.Kept {
	k := &reports.Kept{ScratchDir: t.s.ScratchDir, ServerLog: t.ServerLog(), Connect: fmt.Sprintf("kubectl port-forward -n %s pod/%s %d", t.p.Namespace, t.p.Name, t.p.Port)}
	k.Objects = append(k.Objects, "Pod "+t.p.Namespace+"/"+t.p.Name, "ConfigMap "+t.p.Namespace+"/"+t.p.Name, "NetworkPolicy "+t.p.Namespace+"/"+t.p.Name)
	for _, v := range t.p.Volumes {
		k.Objects = append(k.Objects, "PersistentVolumeClaim "+v.Namespace+"/"+v.Claim)
	}
	return k
}

// CheckIsolation reports what the probe init container saw: a TCP connection to production's
// database or the API server that opened means egress is not denied (a NetworkPolicy is only
// as good as the CNI enforcing it).
func (t *Pod) CheckIsolation(ctx context.Context) checks.Finding {
	d := t.Describe()
	proof := &reports.IsolationProof{Method: "TCP connect (bash /dev/tcp, 3 s) from init container " + ProbeContainer + " under the drill's NetworkPolicy"}
	d.Isolation.Proof = proof
	ev := checks.Evidence{"pod": t.p.Namespace + "/" + t.p.Name, "networkPolicy": t.p.Name}
	if len(t.probe) == 0 {
		d.Isolation.NotPossible = append(d.Isolation.NotPossible, "the isolation probe reported nothing")
		return t.isolationVerdict(ev, "could not prove isolation: the probe container reported no result")
	}
	var open []string
	for _, l := range t.probe {
		proof.Endpoints = append(proof.Endpoints, reports.IsolationReach{Endpoint: l.endpoint, Reachable: l.open, Detail: l.detail})
		if l.open {
			open = append(open, l.endpoint)
		}
	}
	ev["reachable"] = open
	ev["probed"] = len(t.probe)
	if len(open) > 0 {
		d.Isolation.NotPossible = append(d.Isolation.NotPossible, "egress is not denied: the cluster's CNI does not enforce the NetworkPolicy")
		return t.isolationVerdict(ev, fmt.Sprintf("the throwaway pod reached %s despite its deny-all egress NetworkPolicy: this cluster's CNI does not enforce NetworkPolicies", strings.Join(open, ", ")))
	}
	return checks.Passf(local.IsolationName, ev, "none of %d production endpoints (database, API server) was reachable from the throwaway pod", len(t.probe))
}

func (t *Pod) isolationVerdict(ev checks.Evidence, msg string) checks.Finding {
	if t.r.o.RequireIsolation {
		return checks.Failf(local.IsolationName, ev, "%s (restore.kubernetes.requireIsolation is true)", msg)
	}
	return checks.Warnf(local.IsolationName, ev, "%s", msg)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
