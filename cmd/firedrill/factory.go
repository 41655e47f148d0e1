package main

import (
	"fmt"
	"sync"

	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/firedrill/firedrill/audit/policy"
	snaprun "github.com/firedrill/firedrill/restore/snapshot/run"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

// clients is the client factory: it builds each external client once per command (Kubernetes
// clients once per kubeconfig) and hands them to the libraries (run.Factory).
type clients struct {
	mu    sync.Mutex
	kubes map[string]*snaprun.KubeClients // by kubeconfig path ("" = default rules)
}

func newClients() *clients { return &clients{kubes: map[string]*snaprun.KubeClients{}} }

// Kube returns the clients for a kubeconfig path, building them on first use.
func (c *clients) Kube(subject, kubeconfig string) (*snaprun.KubeClients, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.kubes[kubeconfig]; ok {
		return k, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: while loading the Kubernetes configuration for %s (set snapshot.csi.kubeconfig, $KUBECONFIG, or run in a pod): %w", take.ErrUnreachable, subject, err)
	}
	rc.UserAgent = "firedrill"
	k := &snaprun.KubeClients{Rest: rc}
	if k.Snapshots, err = snapshotclient.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("while building the Kubernetes snapshot client: %w", err)
	}
	if k.Core, err = kubernetes.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("while building the Kubernetes client: %w", err)
	}
	c.kubes[kubeconfig] = k
	return k, nil
}

// store returns the target's snapshot store, for either driver.
func store(cl *clients, t *policy.Target) (snaprun.Store, error) {
	st := snapTarget(t)
	return snaprun.StoreOf(cl, &st)
}
