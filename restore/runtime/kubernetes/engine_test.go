package kubernetes

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
)

func launchIn() drill.LaunchIn {
	return drill.LaunchIn{DrillID: drillID, Target: "orders", ScratchDir: "/scratch/d1",
		Volumes: []drill.Volume{{Role: "data", Namespace: scratchNS, Claim: "firedrill-d1-data", Snapshot: "firedrill-d1-data"}}}
}

func redisSpec() drill.LaunchSpec {
	return drill.LaunchSpec{Name: "redis-server", Path: "/usr/local/bin/redis-server", Args: []string{"--port", "5432", "--dir", EngineMount + "/pgdata"}, Image: "redis:7.0"}
}

func TestRemote(t *testing.T) {
	for _, tt := range []struct {
		connect, bind string
	}{{ConnectPortForward, "127.0.0.1"}, {ConnectPodIP, "0.0.0.0"}} {
		t.Run(tt.connect, func(t *testing.T) {
			o := options()
			o.Connect = tt.connect
			rm, err := New(Clients{Core: kubefake.NewSimpleClientset()}, o).Remote(&drill.Copy{Volumes: launchIn().Volumes})
			if err != nil {
				t.Fatal(err)
			}
			if rm.DataDir != EngineMount+"/pgdata" || rm.Bind != tt.bind || rm.Port != 5432 {
				t.Errorf("Remote = %+v, want the data PVC under subPath, bind %s, port 5432", rm, tt.bind)
			}
		})
	}
	if _, err := New(Clients{Core: kubefake.NewSimpleClientset()}, options()).Remote(&drill.Copy{DataDir: "/scratch/d1/data"}); !errors.Is(err, drill.ErrUnsupported) {
		t.Errorf("a local copy: err = %v, want ErrUnsupported", err)
	}
}

func TestLaunchEnginePod(t *testing.T) {
	core := kubefake.NewSimpleClientset()
	o := options()
	o.Image = "" // the engine's default image
	p, err := New(Clients{Core: core, InCluster: true}, o).Launch(context.Background(), launchIn(), redisSpec())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod, err := core.CoreV1().Pods(scratchNS).Get(ctx, podName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned(t, "Pod", pod.ObjectMeta)
	spec := pod.Spec
	server := spec.Containers[0]
	tests := []expect{
		{"automountServiceAccountToken false", spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken},
		{"runAsNonRoot as runAsUser", *spec.SecurityContext.RunAsNonRoot && *spec.SecurityContext.RunAsUser == 26},
		{"the isolation probe first", len(spec.InitContainers) == 1 && spec.InitContainers[0].Name == ProbeContainer},
		{"one server container", len(spec.Containers) == 1 && server.Name == EngineContainer},
		{"the engine's image", server.Image == "redis:7.0" && spec.InitContainers[0].Image == "redis:7.0"},
		{"the binary by name, its arguments", slices.Equal(server.Command, []string{"redis-server", "--port", "5432", "--dir", EngineMount + "/pgdata"})},
		{"data PVC at EngineMount", mounted(server, "data", EngineMount)},
		{"no PGDATA", !slices.ContainsFunc(server.Env, func(e corev1.EnvVar) bool { return e.Name == "PGDATA" })},
		{"read-only root, no capabilities", *server.SecurityContext.ReadOnlyRootFilesystem && slices.Equal(server.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"})},
		{"server port", len(server.Ports) == 1 && server.Ports[0].ContainerPort == 5432},
	}
	for _, tt := range tests {
		if !tt.ok {
			t.Errorf("engine pod: not %s\n%+v", tt.name, spec)
		}
	}
	cm, err := core.CoreV1().ConfigMaps(scratchNS).Get(ctx, podName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["probe-targets"], "orders-rw.prod.svc:5432") || cm.Data["postgresql.conf"] != "" {
		t.Errorf("ConfigMap: %v, want the probe's targets only", cm.Data)
	}
	if _, err := core.NetworkingV1().NetworkPolicies(scratchNS).Get(ctx, podName, metav1.GetOptions{}); err != nil {
		t.Errorf("NetworkPolicy: %v", err)
	}
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	if left := kinds(t, core); len(left) != 0 {
		t.Errorf("left after Remove: %v", left)
	}
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Error("Exited not closed after Remove")
	}
}

func TestLaunchNeedsVolumesAndImage(t *testing.T) {
	rt := New(Clients{Core: kubefake.NewSimpleClientset()}, Options{Namespace: scratchNS})
	in := launchIn()
	in.Volumes = nil
	if _, err := rt.Launch(context.Background(), in, redisSpec()); !errors.Is(err, drill.ErrUnsupported) {
		t.Errorf("no scratch PVC: err = %v, want ErrUnsupported", err)
	}
	s := redisSpec()
	s.Image = ""
	if _, err := rt.Launch(context.Background(), launchIn(), s); !errors.Is(err, drill.ErrUsage) {
		t.Errorf("no image: err = %v, want ErrUsage", err)
	}
}

// TestRun: the tool runs in a pod of its own under a NetworkPolicy of its own, and both are
// gone when Run returns; a status other than 0 is the tool's, with its output.
func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name string
		code int32
	}{{"sound", 0}, {"damaged", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			core := kubefake.NewSimpleClientset()
			var created []string
			core.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
				obj := a.(k8stesting.CreateAction).GetObject().(metav1.Object)
				created = append(created, a.GetResource().Resource+" "+obj.GetName())
				if p, ok := obj.(*corev1.Pod); ok {
					p.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: "tool",
						State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: tt.code, Message: "[offset 0] Checking RDB file dump.rdb\n"}}}}}
				}
				return false, nil, nil
			})
			out, code, err := New(Clients{Core: core}, options()).Run(context.Background(), launchIn(),
				drill.LaunchSpec{Name: "redis-check-rdb", Path: "/usr/local/bin/redis-check-rdb", Args: []string{EngineMount + "/dump.rdb"}, Image: "redis:7.0"})
			if code != int(tt.code) || !strings.Contains(string(out), "Checking RDB file") || (err != nil) != (tt.code != 0) {
				t.Errorf("Run = %q, %d, %v", out, code, err)
			}
			if len(created) != 2 || !strings.HasPrefix(created[0], "networkpolicies firedrill-d1-run-") || !strings.HasPrefix(created[1], "pods firedrill-d1-run-") {
				t.Errorf("created %v, want a NetworkPolicy then a pod of the run", created)
			}
			if left := kinds(t, core); len(left) != 0 {
				t.Errorf("left after Run: %v", left)
			}
		})
	}
}

// TestEnginePodExit: a server that exits (a copy it cannot load) closes Exited and fails the
// start phase as the copy's fault (exit 1), not the platform's.
func TestEnginePodExit(t *testing.T) {
	core := kubefake.NewSimpleClientset()
	kubelet(core, isServer, corev1.PodStatus{Phase: corev1.PodFailed, Conditions: []corev1.PodCondition{scheduledCond},
		InitContainerStatuses: []corev1.ContainerStatus{probeDone("orders-rw.prod.svc:5432 closed timeout")},
		ContainerStatuses: []corev1.ContainerStatus{{Name: EngineContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Message: "# Short read while loading the RDB"}}}}})
	p, err := New(Clients{Core: core, InCluster: true}, options()).Launch(context.Background(), launchIn(), redisSpec())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Remove()
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("Exited not closed for a server that exited")
	}
	_, err = p.(drill.Reachable).Addr(context.Background(), func(string) {})
	if !errors.Is(err, postgres.ErrServerExited) || !strings.Contains(err.Error(), "Short read") {
		t.Errorf("Addr: %v, want ErrServerExited with the server's last lines", err)
	}
	if p.Running() {
		t.Error("Running is true for a server that exited")
	}
}

// TestSweepEngineLeftovers: what a dead drill of an engine left (its server pod, ConfigMap and
// NetworkPolicy, a one-shot pod and its NetworkPolicy) carries the drill's labels, so the next
// drill's sweep of the target removes it all.
func TestSweepEngineLeftovers(t *testing.T) {
	core := kubefake.NewSimpleClientset()
	rt := New(Clients{Core: core, InCluster: true}, options())
	ctx := context.Background()
	p, err := rt.Launch(ctx, launchIn(), redisSpec())
	if err != nil {
		t.Fatal(err)
	}
	defer p.(*EnginePod).quitOnce.Do(func() { close(p.(*EnginePod).quit) })
	run, err := rt.engineSpec(podName+"-run-7", launchIn(), redisSpec())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.NetworkingV1().NetworkPolicies(scratchNS).Create(ctx, run.networkPolicy(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.CoreV1().Pods(scratchNS).Create(ctx, run.execPod(run.Name, []string{"redis-check-rdb", "x"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(kinds(t, core)); n != 5 {
		t.Fatalf("made %d objects, want 5: %v", n, kinds(t, core))
	}
	done, err := newRuntime(core, snapfake.NewSimpleClientset()).SweepTarget(ctx, "orders", drill.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 5 {
		t.Errorf("swept %v, want 5 objects", done)
	}
	if left := kinds(t, core); len(left) != 0 {
		t.Errorf("left after the sweep: %v", left)
	}
}
