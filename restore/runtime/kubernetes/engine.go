package kubernetes

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/firedrill/firedrill/restore/drill"
)

// The Kubernetes runtime runs registered engines' servers (redis-server, mariadbd) too: in a
// pod made like PostgreSQL's throwaway (no ServiceAccount token, every capability dropped, a
// read-only root, the deny-egress NetworkPolicy, the isolation probe) on the scratch PVCs.
var (
	_ drill.Launcher       = (*Runtime)(nil)
	_ drill.RemoteLauncher = (*Runtime)(nil)
	_ drill.Reachable      = (*EnginePod)(nil)
)

// Remote says where an engine's pod sees the copy (the data PVC at EngineMount, under
// restore.kubernetes.subPath) and where its server listens: restore.kubernetes.port, on the
// pod's loopback when firedrill reaches it by port-forward, on the pod's IP otherwise.
func (r *Runtime) Remote(cp *drill.Copy) (*drill.Remote, error) {
	if cp == nil || len(cp.Volumes) == 0 {
		return nil, fmt.Errorf("%w: restore.runtime kubernetes runs engine servers on scratch PVCs, but the backup was not materialised as one: use snapshot.driver csi", drill.ErrUnsupported)
	}
	bind := "127.0.0.1"
	if r.o.Connect == ConnectPodIP {
		bind = "0.0.0.0"
	}
	return &drill.Remote{DataDir: podSpec{Mount: EngineMount, SubPath: r.o.SubPath}.DataDir(), Bind: bind, Port: r.o.Port, FilesDir: FilesMount}, nil
}

// engineSpec is the pod of one engine process: restore.kubernetes.image (default: the
// engine's image), the drill's scratch PVCs mounted at EngineMount.
func (r *Runtime) engineSpec(name string, in drill.LaunchIn, s drill.LaunchSpec) (podSpec, error) {
	if len(in.Volumes) == 0 {
		return podSpec{}, fmt.Errorf("%w: restore.runtime kubernetes runs %s on scratch PVCs, but the backup was not materialised as one: use snapshot.driver csi", drill.ErrUnsupported, s.Name)
	}
	image := r.o.Image
	if image == "" {
		image = s.Image
	}
	if image == "" {
		return podSpec{}, fmt.Errorf("%w: engine server %s has no default image: set restore.kubernetes.image", drill.ErrUsage, s.Name)
	}
	return podSpec{
		Name: name, Namespace: r.o.Namespace, DrillID: in.DrillID, Target: in.Target, Image: image,
		RunAsUser: r.o.RunAsUser, FSGroup: r.o.FSGroup, SubPath: r.o.SubPath, Port: r.o.Port, Volumes: in.Volumes,
		Requests: r.o.Requests, Limits: r.o.Limits, ProbeTargets: r.o.ProbeTargets,
		RunnerLabels: r.o.RunnerLabels, RunnerCIDR: r.o.RunnerCIDR, Keep: in.Keep,
		Mount: EngineMount, Server: EngineContainer, Env: containerEnv(s.Env),
	}, nil
}

// containerEnv is the engine's environment for its containers; nil: LC_ALL=C and HOME on the
// pod's /tmp (the image's PATH stays).
func containerEnv(env []string) []corev1.EnvVar {
	if env == nil {
		env = []string{"LC_ALL=C", "HOME=" + TmpMount}
	}
	out := make([]corev1.EnvVar, 0, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, corev1.EnvVar{Name: k, Value: v})
	}
	return out
}

// argv runs the engine's binary by name, from the image's PATH (as a container runtime does).
func argv(s drill.LaunchSpec) []string {
	return append([]string{filepath.Base(s.Path)}, s.Args...)
}

// Launch starts an engine's server in a pod of its own (firedrill-<drill id>) on the scratch
// PVCs. It does not wait: the engine's readiness wait calls Addr.
func (r *Runtime) Launch(ctx context.Context, in drill.LaunchIn, s drill.LaunchSpec) (drill.Process, error) {
	p, err := r.engineSpec("firedrill-"+in.DrillID, in, s)
	if err != nil {
		return nil, err
	}
	t := &Pod{r: r, p: p, s: drill.StartSpec{DrillID: in.DrillID, Target: in.Target, ScratchDir: in.ScratchDir, EngineVersion: s.EngineVersion, Keep: in.Keep},
		created: map[string]bool{}, ctx: context.WithoutCancel(ctx)}
	if err := t.create(ctx, p.engineConfigMap(s.Files), p.enginePod(argv(s), len(s.Files) > 0)); err != nil {
		return nil, fmt.Errorf("while starting %s: %w", s.Name, err)
	}
	e := &EnginePod{Pod: t, name: s.Name, done: make(chan struct{}), quit: make(chan struct{})}
	go e.watch()
	return e, nil
}

// Run runs an engine's one-shot tool (redis-check-rdb) to completion in a pod made like the
// server's (same image, user, mounts, isolation), under a deny-all NetworkPolicy of its own;
// both are deleted before it returns. The output is the tool's last 4 KiB (the termination
// message).
func (r *Runtime) Run(ctx context.Context, in drill.LaunchIn, s drill.LaunchSpec) ([]byte, int, error) {
	p, err := r.engineSpec(fmt.Sprintf("firedrill-%s-run-%d", in.DrillID, r.runs.Add(1)), in, s)
	if err != nil {
		return nil, -1, err
	}
	// Only the runner may connect, and the tool listens on nothing: no ingress rule at all.
	p.RunnerLabels, p.RunnerCIDR = nil, ""
	np := r.c.Core.NetworkingV1().NetworkPolicies(p.Namespace)
	if _, err := np.Create(ctx, p.networkPolicy(), metav1.CreateOptions{}); err != nil {
		return nil, -1, fmt.Errorf("while creating NetworkPolicy %s/%s to run %s: %w", p.Namespace, p.Name, s.Name, err)
	}
	defer func() {
		if err := np.Delete(context.WithoutCancel(ctx), p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			r.o.Log.Warn("could not delete a one-shot pod's NetworkPolicy (the next drill's sweep will)", "networkPolicy", p.Namespace+"/"+p.Name, "error", err)
		}
	}()
	out, code, err := r.runPod(ctx, p, p.Name, argv(s))
	if err == nil && code != 0 {
		err = fmt.Errorf("%s exited with code %d in pod %s/%s", s.Name, code, p.Namespace, p.Name)
	}
	return out, code, err
}

// EnginePod is an engine's server running in a pod: the PostgreSQL throwaway's handling of the
// pod (phases, isolation probe, logs, port-forward, removal) with the engine's own stop and
// exit.
type EnginePod struct {
	*Pod
	name string

	done, quit chan struct{}
	quitOnce   sync.Once
}

// watch closes done once the server has exited: its container terminated, the pod ended or
// is gone. Remove ends it.
func (e *EnginePod) watch() {
	defer close(e.done)
	for {
		pod, err := e.r.c.Core.CoreV1().Pods(e.p.Namespace).Get(e.ctx, e.p.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return
		case err == nil && exited(pod):
			return
		}
		select {
		case <-e.quit:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func exited(pod *corev1.Pod) bool {
	if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return true
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if t := cs.State.Terminated; t != nil && (cs.Name == EngineContainer || t.ExitCode != 0) {
			return true
		}
	}
	return false
}

// Exited is closed once the server exited.
func (e *EnginePod) Exited() <-chan struct{} { return e.done }

// Addr waits for the pod to be scheduled and its server container to start (the phases'
// timeouts, restore.kubernetes.timeouts), then returns where firedrill reaches the server:
// a port-forward to the pod's loopback, or the pod's IP in the cluster. A server that exits
// first (a copy it cannot load) wraps postgres.ErrServerExited; a platform that cannot run
// the pod, drill.ErrPlatform.
func (e *EnginePod) Addr(ctx context.Context, status func(string)) (string, error) {
	if e.host != "" {
		return net.JoinHostPort(e.host, portString(e.port)), nil
	}
	if err := e.waitPhase(ctx, "schedule", e.r.o.Schedule, status, scheduled); err != nil {
		return "", err
	}
	if err := e.waitPhase(ctx, "start", e.r.o.Start, status, running); err != nil {
		return "", err
	}
	if err := e.connectAddr(ctx, e.last); err != nil {
		return "", err
	}
	return net.JoinHostPort(e.host, portString(e.port)), nil
}

// Exec runs one of the engine's tools (found by name on the image's PATH) in a pod of its own
// on the same volumes.
func (e *EnginePod) Exec(ctx context.Context, path string, args ...string) ([]byte, int, error) {
	return e.Pod.Exec(ctx, filepath.Base(path), args...)
}

// Stop deletes the server's pod with a grace period (the kubelet's SIGTERM: the engine's
// clean shutdown) and waits for it to go; clean is whether the server's container was last
// seen to exit with status 0.
func (e *EnginePod) Stop(grace time.Duration) (bool, error) {
	e.closeForward()
	secs := int64(grace.Seconds())
	err := e.r.c.Core.CoreV1().Pods(e.p.Namespace).Delete(e.ctx, e.p.Name, metav1.DeleteOptions{GracePeriodSeconds: &secs})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("while deleting pod %s/%s: %w", e.p.Namespace, e.p.Name, err)
	}
	if err := e.waitGone(e.ctx, e.p.Name, grace+30*time.Second); err != nil {
		return false, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		return false, nil
	}
	for _, cs := range e.last.Status.ContainerStatuses {
		if cs.Name == EngineContainer && cs.State.Terminated != nil {
			return cs.State.Terminated.ExitCode == 0, nil
		}
	}
	return false, nil
}

// Running reports whether the server's pod runs and its server has not exited.
func (e *EnginePod) Running() bool {
	select {
	case <-e.done:
		return false
	default:
	}
	return e.Pod.Running()
}

// Remove ends the watch, then deletes the drill's pods, ConfigMap and NetworkPolicy.
func (e *EnginePod) Remove() error {
	e.quitOnce.Do(func() { close(e.quit) })
	return e.Pod.Remove()
}
