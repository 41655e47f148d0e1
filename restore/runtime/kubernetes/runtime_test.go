package kubernetes

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

// kubelet plays the scheduler and the kubelet: a pod whose name passes match gets status on
// creation (the fake API server keeps it).
func kubelet(core *kubefake.Clientset, match func(name string) bool, status corev1.PodStatus) {
	core.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		if match(p.Name) {
			p.Spec.NodeName = "node-1"
			p.Status = *status.DeepCopy()
		}
		return false, nil, nil
	})
}

func isServer(n string) bool { return n == podName }
func isExec(n string) bool   { return strings.HasPrefix(n, podName+"-exec-") }

var scheduledCond = corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(time.Second))}

func probeDone(msg string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: ProbeContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Message: msg}}}
}

func runningStatus(ip, probe string) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, Conditions: []corev1.PodCondition{scheduledCond},
		InitContainerStatuses: []corev1.ContainerStatus{
			{Name: PrepareContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
			probeDone(probe)},
		ContainerStatuses: []corev1.ContainerStatus{{Name: ServerContainer, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0.Add(3 * time.Second))}}}},
	}
}

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestWaitReadyFailures(t *testing.T) {
	pending := corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{scheduledCond}}
	tests := []struct {
		name   string
		status *corev1.PodStatus
		setup  func(t *testing.T, core *kubefake.Clientset, o *Options)
		want   []string
		is     func(error) bool
		// cause is the sentinel the error wraps, when the case says which: drill.ErrPlatform
		// (exit 3) or postgres.ErrServerExited (the copy did not recover: exit 1).
		cause error
	}{
		{
			name: "image cannot be pulled",
			status: func() *corev1.PodStatus {
				s := pending.DeepCopy()
				s.InitContainerStatuses = []corev1.ContainerStatus{{Name: PrepareContainer, Image: "registry.example/postgres:16.4",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "manifest unknown"}}}}
				return s
			}(),
			want: []string{"phase start", "image registry.example/postgres:16.4 cannot be pulled", "ErrImagePull: manifest unknown", "restore.kubernetes.image"},
		},
		{
			name: "image pull back-off",
			status: func() *corev1.PodStatus {
				s := pending.DeepCopy()
				s.ContainerStatuses = []corev1.ContainerStatus{{Name: ServerContainer, Image: "registry.example/postgres:16.4",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
				return s
			}(),
			want:  []string{"image registry.example/postgres:16.4 cannot be pulled", "ImagePullBackOff", "restore.kubernetes.image"},
			cause: drill.ErrPlatform,
		},
		{
			name: "prepare exits non-zero: its termination message lines",
			status: func() *corev1.PodStatus {
				s := pending.DeepCopy()
				s.InitContainerStatuses = []corev1.ContainerStatus{{Name: PrepareContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 2, Reason: "Error", Message: "firedrill: no PG_VERSION in /var/lib/postgresql/data/pgdata: is restore.kubernetes.subPath right?\ntotal 8\ndrwx------ 2 26 26 4096 lost+found\n"}}}}
				return s
			}(),
			want:  []string{"phase start", "container prepare exited with code 2 (Error)", "no PG_VERSION in /var/lib/postgresql/data/pgdata", "lost+found"},
			cause: drill.ErrPlatform,
		},
		{
			name: "prepare cannot read pg_control: the backup is damaged, not the platform",
			status: func() *corev1.PodStatus {
				s := pending.DeepCopy()
				s.InitContainerStatuses = []corev1.ContainerStatus{{Name: PrepareContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: prepareDamaged, Reason: "Error", Message: "pg_controldata: error: could not read file \"global/pg_control\"\nfiredrill: pg_controldata cannot read the restored copy's pg_control: the backup is damaged\n"}}}}
				return s
			}(),
			want:  []string{"container prepare exited with code 3", "the backup is damaged"},
			cause: postgres.ErrServerExited,
		},
		{
			name: "server crash-looping",
			status: func() *corev1.PodStatus {
				s := pending.DeepCopy()
				s.ContainerStatuses = []corev1.ContainerStatus{{Name: ServerContainer, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s"}}}}
				return s
			}(),
			want: []string{"container postgres is crash-looping", "back-off 10s"},
		},
		{
			name:   "pod failed",
			status: &corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory.", Conditions: []corev1.PodCondition{scheduledCond}},
			want:   []string{"the pod failed: Evicted The node was low on resource: memory."},
		},
		{
			name: "unschedulable at the schedule timeout",
			status: &corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available: 3 Insufficient memory."}}},
			setup: func(_ *testing.T, _ *kubefake.Clientset, o *Options) { o.Schedule = 300 * time.Millisecond },
			want:  []string{"phase schedule", "did not schedule", "unschedulable: 0/3 nodes are available: 3 Insufficient memory.", "restore.kubernetes.resources.requests", "restore.kubernetes.timeouts.schedule"},
		},
		{
			name: "a PVC that does not bind is named at the schedule timeout",
			setup: func(t *testing.T, core *kubefake.Clientset, o *Options) {
				o.Schedule = 300 * time.Millisecond
				ctx := context.Background()
				if _, err := core.CoreV1().PersistentVolumeClaims(scratchNS).Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "firedrill-d1-data", Namespace: scratchNS},
					Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := core.CoreV1().Events(scratchNS).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: scratchNS},
					InvolvedObject: corev1.ObjectReference{Kind: "PersistentVolumeClaim", Name: "firedrill-d1-data"}, Reason: "ProvisioningFailed",
					Message: "snapshot not found", LastTimestamp: metav1.NewTime(t0)}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"phase schedule", "PVC " + scratchNS + "/firedrill-d1-data is Pending: ProvisioningFailed: snapshot not found"},
		},
		{
			name: "reading the pod forbidden",
			setup: func(_ *testing.T, core *kubefake.Clientset, _ *Options) {
				failGet(core, "pods", apierrors.NewForbidden(grPods, podName, errors.New("RBAC")))
			},
			want: []string{"phase schedule: while reading pod " + scratchNS + "/" + podName},
			is:   apierrors.IsForbidden,
		},
		{
			name: "reading the pod times out",
			setup: func(_ *testing.T, core *kubefake.Clientset, _ *Options) {
				failGet(core, "pods", apierrors.NewServerTimeout(grPods, "get", 1))
			},
			want: []string{"while reading pod"},
			is:   apierrors.IsServerTimeout,
		},
		{
			name:   "running, but the database never accepts connections",
			status: func() *corev1.PodStatus { s := runningStatus("127.0.0.1", ""); return &s }(),
			setup:  func(t *testing.T, _ *kubefake.Clientset, o *Options) { o.Port = closedPort(t) },
			want:   []string{"phase ready", "did not finish recovery", "restore.kubernetes.timeouts.ready"},
		},
		{
			name:   "port-forward without a client configuration",
			status: func() *corev1.PodStatus { s := runningStatus("10.1.2.3", ""); return &s }(),
			setup:  func(_ *testing.T, _ *kubefake.Clientset, o *Options) { o.Connect = ConnectPortForward },
			want:   []string{"phase ready: while port-forwarding to pod " + scratchNS + "/" + podName, "restore.kubernetes.connect"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := kubefake.NewSimpleClientset()
			o := options()
			if tt.setup != nil {
				tt.setup(t, core, &o)
			}
			if tt.status != nil {
				kubelet(core, isServer, *tt.status)
			}
			th, err := New(Clients{Core: core, InCluster: true}, o).Start(context.Background(), startSpec())
			if err != nil {
				t.Fatal(err)
			}
			err = th.WaitReady(context.Background(), func(string) {})
			if err == nil {
				t.Fatal("WaitReady succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.is != nil && !tt.is(err) {
				t.Errorf("error %v does not wrap the API error", err)
			}
			if tt.cause != nil {
				other := error(drill.ErrPlatform)
				if tt.cause == drill.ErrPlatform {
					other = postgres.ErrServerExited
				}
				if !errors.Is(err, tt.cause) || errors.Is(err, other) {
					t.Errorf("error %v: want it to wrap %v and not %v", err, tt.cause, other)
				}
			}
			if err := th.Remove(); err != nil && tt.is == nil {
				t.Fatal(err)
			}
		})
	}
}

func failGet(core *kubefake.Clientset, res string, err error) {
	core.PrependReactor("get", res, func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, err })
}

// The milestones come from Kubernetes' own timestamps, even when the database then fails.
func TestWaitReadyMilestones(t *testing.T) {
	core := kubefake.NewSimpleClientset()
	o := options()
	o.Port = closedPort(t)
	kubelet(core, isServer, runningStatus("127.0.0.1", ""))
	th := start(t, core, o, startSpec())
	_ = th.WaitReady(context.Background(), func(string) {})
	got := map[string]time.Time{}
	for _, m := range th.Milestones() {
		got[m.Name] = m.At
	}
	if !got["pod-scheduled"].Equal(t0.Add(time.Second)) || !got["container-started"].Equal(t0.Add(3*time.Second)) {
		t.Errorf("milestones %+v", th.Milestones())
	}
	if d := th.Describe(); d.Listen != net.JoinHostPort("127.0.0.1", portString(o.Port)) || d.Node != "node-1" || d.Pod != podName {
		t.Errorf("describe %+v", d)
	}
}

func TestCheckIsolation(t *testing.T) {
	tests := []struct {
		name      string
		probe     string
		require   bool
		want      checks.Status
		isolated  bool
		msg       string
		reachable []string
	}{
		{"production's database reachable: warn", "orders-rw.prod.svc:5432 open connected\n10.96.0.1:443 closed timed out\n", false, checks.Warn, false, "orders-rw.prod.svc:5432", []string{"orders-rw.prod.svc:5432"}},
		{"reachable, isolation required: fail", "orders-rw.prod.svc:5432 open connected\n10.96.0.1:443 open connected\n", true, checks.Fail, false, "restore.kubernetes.requireIsolation", []string{"orders-rw.prod.svc:5432", "10.96.0.1:443"}},
		{"all closed: pass", "orders-rw.prod.svc:5432 closed timed out\n10.96.0.1:443 closed timed out\n", true, checks.Pass, true, "none of 2", nil},
		{"no probe result: warn", "", false, checks.Warn, false, "could not prove isolation", nil},
		{"no probe result, isolation required: fail", "", true, checks.Fail, false, "could not prove isolation", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := kubefake.NewSimpleClientset()
			o := options()
			o.RequireIsolation = tt.require
			kubelet(core, isServer, runningStatus("10.1.2.3", tt.probe))
			p := start(t, core, o, startSpec())
			// The start phase reads the probe's termination message.
			if err := p.waitPhase(context.Background(), "start", time.Second, func(string) {}, running); err != nil {
				t.Fatal(err)
			}
			f := p.CheckIsolation(context.Background())
			if f.Status != tt.want || !strings.Contains(f.Message, tt.msg) {
				t.Errorf("finding %s %q, want %s saying %q", f.Status, f.Message, tt.want, tt.msg)
			}
			if tt.reachable != nil {
				got, _ := f.Evidence["reachable"].([]string)
				if strings.Join(got, ",") != strings.Join(tt.reachable, ",") {
					t.Errorf("reachable %v, want %v", got, tt.reachable)
				}
			}
			d := p.Describe()
			if d.NetworkIsolated != tt.isolated {
				t.Errorf("NetworkIsolated %v, want %v", d.NetworkIsolated, tt.isolated)
			}
			if d.Isolation == nil || d.Isolation.Proof == nil || len(d.Isolation.Proof.Endpoints) != strings.Count(tt.probe, "\n") {
				t.Errorf("isolation %+v: the proof should list every probed endpoint", d.Isolation)
			}
		})
	}
}

func TestStop(t *testing.T) {
	tests := []struct {
		name  string
		state string
		code  int32
		clean bool
	}{
		{"clean shutdown", "shut down", 0, true},
		{"still in production: not clean", "in production", 0, false},
		{"pg_controldata failed", "shut down", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := kubefake.NewSimpleClientset()
			kubelet(core, isServer, runningStatus("10.1.2.3", ""))
			kubelet(core, isExec, corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: "tool",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: tt.code, Message: strings.Replace(controldata, "%s", tt.state, 1)}}}}})
			var execs []*corev1.Pod
			core.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod); isExec(p.Name) {
					execs = append(execs, p.DeepCopy())
				}
				return false, nil, nil
			})
			p := start(t, core, options(), startSpec())
			clean, err := p.Stop(time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if clean != tt.clean {
				t.Errorf("clean %v, want %v", clean, tt.clean)
			}
			if len(execs) != 1 {
				t.Fatalf("%d exec pods, want 1", len(execs))
			}
			e := execs[0]
			if !strings.Contains(strings.Join(e.Spec.Containers[0].Command, " "), "pg_controldata "+DataMount+"/pgdata") {
				t.Errorf("exec command %q", e.Spec.Containers[0].Command)
			}
			if *e.Spec.AutomountServiceAccountToken || e.Spec.RestartPolicy != corev1.RestartPolicyNever || e.Labels["firedrill.io/drill-id"] != drillID {
				t.Errorf("exec pod %+v lacks the throwaway's safety settings or labels", e)
			}
			left := kinds(t, core)
			if len(left) != 2 || left[0] != "ConfigMap "+podName || left[1] != "NetworkPolicy "+podName {
				t.Errorf("after Stop: %v, want only the ConfigMap and NetworkPolicy (server and exec pods gone)", left)
			}
			if p.Running() {
				t.Error("Running after Stop")
			}
			if err := p.Remove(); err != nil {
				t.Fatal(err)
			}
			if left := kinds(t, core); len(left) > 0 {
				t.Errorf("Remove left %v", left)
			}
		})
	}
}

func TestExecFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(core *kubefake.Clientset)
		want  string
	}{
		{"create forbidden", func(core *kubefake.Clientset) {
			core.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if isExec(a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name) {
					return true, nil, apierrors.NewForbidden(grPods, "exec", errors.New("RBAC"))
				}
				return false, nil, nil
			})
		}, "while creating pod " + scratchNS + "/" + podName + "-exec-1 to run pg_checksums"},
		{"never terminates", func(*kubefake.Clientset) {}, "while running pg_checksums in pod " + scratchNS + "/" + podName + "-exec-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := kubefake.NewSimpleClientset()
			tt.setup(core)
			o := options()
			o.Schedule, o.Start = 150*time.Millisecond, 150*time.Millisecond
			p := start(t, core, o, startSpec())
			_, code, err := p.Exec(context.Background(), "pg_checksums", "--check")
			if err == nil || code != -1 || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Exec = %d, %v; want -1 and %q", code, err, tt.want)
			}
			for _, k := range kinds(t, core) {
				if strings.Contains(k, "-exec-") {
					t.Errorf("exec pod left: %s", k)
				}
			}
		})
	}
}

func TestDrills(t *testing.T) {
	r := New(Clients{}, Options{})
	if err := r.Drills("csi"); err != nil {
		t.Errorf("csi: %v", err)
	}
	if err := r.Drills("local"); !errors.Is(err, drill.ErrUnsupported) {
		t.Errorf("local: %v, want drill.ErrUnsupported", err)
	}
}

func TestConnectMode(t *testing.T) {
	tests := []struct {
		connect   string
		inCluster bool
		want      string
	}{
		{"", true, ConnectPodIP},
		{ConnectAuto, false, ConnectPortForward},
		{ConnectPortForward, true, ConnectPortForward},
		{ConnectPodIP, false, ConnectPodIP},
	}
	for _, tt := range tests {
		if got := New(Clients{InCluster: tt.inCluster}, Options{Connect: tt.connect}).o.Connect; got != tt.want {
			t.Errorf("connect %q in cluster %v: %s, want %s", tt.connect, tt.inCluster, got, tt.want)
		}
	}
}

func TestPortForwardNeedsConfig(t *testing.T) {
	if _, _, err := portForward(context.Background(), Clients{}, scratchNS, podName, 5432); err == nil {
		t.Fatal("port-forward without a rest config succeeded")
	}
}
