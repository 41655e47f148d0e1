package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/drill"
	kuberuntime "github.com/firedrill/firedrill/restore/runtime/kubernetes"
	"github.com/firedrill/firedrill/restore/source/volumesnapshot"
)

// wiring builds the sources and runtimes of a command's drills from the validated config, with
// clients built once.
type wiring struct {
	cfg *policy.Config
	cl  *clients
}

func newWiring(cfg *policy.Config) *wiring { return &wiring{cfg: cfg, cl: newClients()} }

// source is where a target's drills get their backups: one line per source.
func (w *wiring) source(t *policy.Target) drill.Source {
	if t.Restore.Runtime == kuberuntime.Name {
		return drill.Lazy(func() (drill.Source, error) { return w.volumeSnapshots(t) })
	}
	return drillSource(t)
}

// runtimes are the places a throwaway can run, by restore.runtime: one line per runtime.
func (w *wiring) runtimes() map[string]drill.RuntimeFactory {
	r := runtimes()
	r[kuberuntime.Name] = w.kubeRuntime
	return r
}

func (w *wiring) kubeconfig(t *policy.Target) string {
	if k := t.Restore.Kubernetes.Kubeconfig; k != "" {
		return k
	}
	return t.Snapshot.CSI.Kubeconfig
}

func (w *wiring) kubeClients(t *policy.Target) (kuberuntime.Clients, error) {
	path := w.kubeconfig(t)
	k, err := w.cl.Kube("target "+t.Name, path)
	if err != nil {
		return kuberuntime.Clients{}, err
	}
	inCluster := path == "" && os.Getenv("KUBECONFIG") == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != ""
	return kuberuntime.Clients{Core: k.Core, Snapshots: k.Snapshots.SnapshotV1(), Rest: k.Rest, InCluster: inCluster}, nil
}

func (w *wiring) volumeSnapshots(t *policy.Target) (drill.Source, error) {
	c, err := w.kubeClients(t)
	if err != nil {
		return nil, err
	}
	k := t.Restore.Kubernetes
	ns := k.SnapshotNamespace
	if ns == "" {
		ns = t.Snapshot.CSI.Namespace
	}
	return &volumesnapshot.Source{Snapshots: c.Snapshots, Core: c.Core, Target: t.Name, Engine: t.Engine,
		SnapshotNamespace: ns, Selector: k.SnapshotSelector, SourcePVC: k.SourcePVC, ScratchNamespace: k.Namespace,
		StorageClass: k.StorageClass, BindTimeout: k.Timeouts.Bind.Duration, Now: time.Now}, nil
}

func (w *wiring) kubeRuntime(_ context.Context, o drill.RuntimeOptions) (drill.Runtime, error) {
	t, ok := w.cfg.Target(o.Target)
	if !ok {
		return nil, fmt.Errorf("restore.runtime kubernetes: no target %q in %s", o.Target, w.cfg.File)
	}
	c, err := w.kubeClients(t)
	if err != nil {
		return nil, err
	}
	return kuberuntime.New(c, kubeOptions(t)), nil
}

// kubeOptions maps restore.kubernetes (validated and defaulted at load).
func kubeOptions(t *policy.Target) kuberuntime.Options {
	k := t.Restore.Kubernetes
	o := kuberuntime.Options{
		Namespace: k.Namespace, Image: k.Image, RunAsUser: *k.RunAsUser, FSGroup: *k.FSGroup, SubPath: k.SubPath,
		Port: k.Port, Connect: k.Connect, Requests: quantities(k.Resources.Requests), Limits: quantities(k.Resources.Limits),
		RequireIsolation: k.RequireIsolation, ProbeTargets: append(productionEndpoints(t), k.ProbeTargets...),
		Schedule: k.Timeouts.Schedule.Duration, Start: k.Timeouts.Start.Duration, Ready: k.Timeouts.Ready.Duration,
		Now: time.Now, RunnerLabels: map[string]string{"app.kubernetes.io/name": "firedrill"},
	}
	if ip := net.ParseIP(os.Getenv("POD_IP")); ip != nil {
		o.RunnerCIDR = ip.String() + "/32"
	}
	return o
}

// productionEndpoints are the database's TCP endpoints from its DSN (never the DSN itself).
func productionEndpoints(t *policy.Target) []string {
	dsn, err := t.DSN()
	if err != nil {
		return nil
	}
	pc, err := pgconn.ParseConfig(dsn)
	if err != nil {
		// Another engine's URL (redis://, mysql://): its host and explicit port.
		if u, uerr := url.Parse(dsn); uerr == nil && u.Hostname() != "" && u.Port() != "" {
			return []string{net.JoinHostPort(u.Hostname(), u.Port())}
		}
		return nil
	}
	var out []string
	add := func(host string, port uint16) {
		if host != "" && host[0] != '/' {
			out = append(out, net.JoinHostPort(host, strconv.Itoa(int(port))))
		}
	}
	add(pc.Host, pc.Port)
	for _, f := range pc.Fallbacks {
		add(f.Host, f.Port)
	}
	return out
}

func quantities(m map[string]string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range m {
		out[corev1.ResourceName(k)] = resource.MustParse(v) // validated at load
	}
	return out
}
