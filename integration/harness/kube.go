package harness

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"
)

// KubeAPIServerVersion is the kube-apiserver the harness runs. The same version is pinned in
// integration/tools/kube-apiserver/go.mod, from which integration/setup/gotools.sh builds
// $FIREDRILL_CACHE_DIR/bin/kube-apiserver-<version>. etcd comes from Debian's etcd-server, copied
// to $FIREDRILL_CACHE_DIR/bin/etcd-<version>; the newest one there is used.
const KubeAPIServerVersion = "v1.36.3"

// The snapshot.storage.k8s.io and groupsnapshot.storage.k8s.io CRDs, copied verbatim from
// github.com/kubernetes-csi/external-snapshotter/client/v8@v8.7.0/config/crd (the client version
// in go.mod; TestSnapshotCRDsMatchTheClientModule keeps the copies honest). Embedded, so tests in
// any package can install them whatever their working directory.
//
//go:embed testdata/kube/crds/*.yaml
var snapshotCRDs embed.FS

// Kube is a real API server (kube-apiserver + etcd, no kubelet, no controllers) private to one
// test, with the VolumeSnapshot and VolumeGroupSnapshot CRDs installed. There is no
// kube-controller-manager: nothing creates default ServiceAccounts, binds PVCs or runs the
// snapshot controller; tests create or fake what those would.
type Kube struct {
	// Config authenticates as a cluster admin (system:masters).
	Config *rest.Config
	// Clientset and Snapshots are built from Config.
	Clientset kubernetes.Interface
	Snapshots snapshotclient.Interface
	// Dir holds etcd's data and the control plane's log.
	Dir string
}

var quietControllerRuntime sync.Once

// StartKube starts etcd and kube-apiserver through controller-runtime's envtest on free ports of
// 127.0.0.1, installs the snapshot CRDs, and stops both when the test ends. It skips (or fails,
// see Missing) when the cached binaries are absent.
func StartKube(t testing.TB) *Kube {
	t.Helper()
	Integration(t)
	apiserverBin := filepath.Join(CacheDir(), "bin", "kube-apiserver-"+KubeAPIServerVersion)
	if _, err := os.Stat(apiserverBin); err != nil {
		Missing(t, "kube-apiserver "+KubeAPIServerVersion, "no "+apiserverBin, "run `make setup`")
	}
	etcdBin, err := newestEtcd(filepath.Join(CacheDir(), "bin"))
	if err != nil {
		Missing(t, "etcd", err.Error(), "run `make setup` (as root it installs Debian's etcd-server)")
	}
	crds, err := loadSnapshotCRDs()
	if err != nil {
		t.Fatalf("while loading the snapshot CRDs: %v", err)
	}

	// envtest logs through controller-runtime's global logger and prints a stack trace 30 s
	// into a run if nobody set one. Its log says nothing the control plane's own log does not.
	quietControllerRuntime.Do(func() { ctrllog.SetLogger(logr.Discard()) })

	dir := t.TempDir()
	etcdData := filepath.Join(dir, "etcd")
	if err := os.Mkdir(etcdData, 0o700); err != nil {
		t.Fatalf("while preparing etcd's data directory: %v", err)
	}
	logPath := filepath.Join(dir, "controlplane.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("while creating the control plane log: %v", err)
	}
	t.Cleanup(func() { logFile.Close() })

	useExisting := false
	env := &envtest.Environment{
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{Path: orphanProof(t, dir, apiserverBin), Out: logFile, Err: logFile},
			Etcd:      &envtest.Etcd{Path: orphanProof(t, dir, etcdBin), DataDir: etcdData, Out: logFile, Err: logFile},
		},
		CRDs:                     crds,
		UseExistingCluster:       &useExisting, // never USE_EXISTING_CLUSTER from the environment
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// Registered before Start: a start that fails half way (CRDs not established) still stops
	// what it started.
	t.Cleanup(func() {
		stopped := time.Now()
		if err := env.Stop(); err != nil {
			t.Errorf("while stopping the control plane: %v\n%s", err, logTail(logPath))
			return
		}
		t.Logf("control plane stopped in %s", time.Since(stopped).Round(time.Millisecond))
	})
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("while starting kube-apiserver %s with %s: %v\n%s", KubeAPIServerVersion, filepath.Base(etcdBin), err, logTail(logPath))
	}
	logComponent(t, "kube-apiserver", KubeAPIServerVersion, fmt.Sprintf("%s, ready at %s with %d CRDs in %s", filepath.Base(etcdBin), cfg.Host, len(crds), time.Since(start).Round(time.Millisecond)))
	// Tests create objects in bursts; client-side throttling at the default 5 QPS only slows them.
	cfg.QPS, cfg.Burst = 200, 400

	k := &Kube{Config: cfg, Dir: dir}
	if k.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatalf("while building the Kubernetes clientset: %v", err)
	}
	if k.Snapshots, err = snapshotclient.NewForConfig(cfg); err != nil {
		t.Fatalf("while building the snapshot clientset: %v", err)
	}
	return k
}

// ClientAs returns a rest.Config that authenticates as ServiceAccount namespace/serviceAccount
// with a token from the TokenRequest API, after creating the namespace (if needed), the
// ServiceAccount and the grants: each *rbacv1.Role is created (in namespace unless it names its
// own) and bound to the ServiceAccount with a RoleBinding, each *rbacv1.ClusterRole is created and
// bound with a ClusterRoleBinding. It returns once the authorizer sees the grants, so a test can
// show that exactly this RBAC is enough, and no more is granted.
func (k *Kube) ClientAs(t testing.TB, namespace, serviceAccount string, grants ...runtime.Object) *rest.Config {
	t.Helper()
	ctx := t.Context()
	cs := k.Clientset

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("while creating namespace %s: %v", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount, Namespace: namespace}}
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("while creating ServiceAccount %s/%s: %v", namespace, serviceAccount, err)
	}
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: namespace}

	type check struct {
		namespace string
		rules     []rbacv1.PolicyRule
	}
	var checks []check
	for _, g := range grants {
		switch r := g.(type) {
		case *rbacv1.Role:
			role := r.DeepCopy()
			if role.Namespace == "" {
				role.Namespace = namespace
			}
			if _, err := cs.RbacV1().Roles(role.Namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
				t.Fatalf("while creating Role %s/%s: %v", role.Namespace, role.Name, err)
			}
			rb := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: role.Name + "-" + serviceAccount, Namespace: role.Namespace},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
				Subjects:   []rbacv1.Subject{subject},
			}
			if _, err := cs.RbacV1().RoleBindings(role.Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
				t.Fatalf("while binding Role %s/%s to %s: %v", role.Namespace, role.Name, serviceAccount, err)
			}
			checks = append(checks, check{role.Namespace, role.Rules})
		case *rbacv1.ClusterRole:
			role := r.DeepCopy()
			if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
				t.Fatalf("while creating ClusterRole %s: %v", role.Name, err)
			}
			crb := &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: role.Name + "-" + namespace + "-" + serviceAccount},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
				Subjects:   []rbacv1.Subject{subject},
			}
			if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
				t.Fatalf("while binding ClusterRole %s to %s/%s: %v", role.Name, namespace, serviceAccount, err)
			}
			checks = append(checks, check{"", role.Rules})
		default:
			t.Fatalf("ClientAs: grant %T is neither *rbacv1.Role nor *rbacv1.ClusterRole", g)
		}
	}

	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("while requesting a token for %s/%s: %v", namespace, serviceAccount, err)
	}
	cfg := rest.AnonymousClientConfig(k.Config)
	cfg.BearerToken = tr.Status.Token

	// The RBAC authorizer reads roles and bindings from an informer: wait until it has them, so
	// the test's first request is not refused for a reason that is not the test's.
	user := "system:serviceaccount:" + namespace + ":" + serviceAccount
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
	for _, c := range checks {
		for _, rule := range c.rules {
			sar := accessReviewFor(user, groups, c.namespace, rule)
			if sar == nil {
				continue
			}
			k.waitAllowed(t, sar)
		}
	}
	return cfg
}

// accessReviewFor builds a SubjectAccessReview for one request the rule allows, or nil for a
// rule that names nothing to ask about.
func accessReviewFor(user string, groups []string, namespace string, rule rbacv1.PolicyRule) *authorizationv1.SubjectAccessReview {
	if len(rule.Verbs) == 0 {
		return nil
	}
	spec := authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups}
	switch {
	case len(rule.NonResourceURLs) > 0:
		spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{
			Path: strings.TrimSuffix(rule.NonResourceURLs[0], "*"), Verb: rule.Verbs[0],
		}
	case len(rule.Resources) > 0 && len(rule.APIGroups) > 0:
		ra := &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: rule.Verbs[0], Group: rule.APIGroups[0],
		}
		ra.Resource, ra.Subresource, _ = strings.Cut(rule.Resources[0], "/")
		if len(rule.ResourceNames) > 0 {
			ra.Name = rule.ResourceNames[0]
		}
		spec.ResourceAttributes = ra
	default:
		return nil
	}
	return &authorizationv1.SubjectAccessReview{Spec: spec}
}

func (k *Kube) waitAllowed(t testing.TB, sar *authorizationv1.SubjectAccessReview) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := k.Clientset.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("while checking that RBAC grants %s: %v", describeReview(sar), err)
		}
		if res.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RBAC still denies %s after 15 s: %s", describeReview(sar), res.Status.Reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describeReview(sar *authorizationv1.SubjectAccessReview) string {
	s := sar.Spec
	if ra := s.ResourceAttributes; ra != nil {
		return fmt.Sprintf("%s %s %s.%s in %q to %s", ra.Verb, ra.Name, ra.Resource, ra.Group, ra.Namespace, s.User)
	}
	return fmt.Sprintf("%s %s to %s", s.NonResourceAttributes.Verb, s.NonResourceAttributes.Path, s.User)
}

func loadSnapshotCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := fs.Glob(snapshotCRDs, "testdata/kube/crds/*.yaml")
	if err != nil {
		return nil, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		b, err := snapshotCRDs.ReadFile(f)
		if err != nil {
			return nil, err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, crd); err != nil {
			return nil, fmt.Errorf("while parsing %s: %w", f, err)
		}
		crds = append(crds, crd)
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("no CRDs embedded from testdata/kube/crds")
	}
	return crds, nil
}

// newestEtcd returns the etcd-v<version> in dir with the highest version.
func newestEtcd(dir string) (string, error) {
	paths, _ := filepath.Glob(filepath.Join(dir, "etcd-v*"))
	paths = slices.DeleteFunc(paths, func(p string) bool { return strings.Contains(filepath.Base(p), ".tmp") })
	if len(paths) == 0 {
		return "", fmt.Errorf("no %s", filepath.Join(dir, "etcd-v*"))
	}
	version := func(p string) []int {
		var v []int
		for _, f := range strings.Split(strings.TrimPrefix(filepath.Base(p), "etcd-v"), ".") {
			n, _ := strconv.Atoi(f)
			v = append(v, n)
		}
		return v
	}
	return slices.MaxFunc(paths, func(a, b string) int { return slices.Compare(version(a), version(b)) }), nil
}

// orphanProof returns a path that runs bin so that the kernel kills it when the test binary dies.
// envtest starts its processes in their own process group but cannot set a parent-death signal,
// so a test binary killed by -timeout or a panic would leave etcd and kube-apiserver running;
// setpriv (util-linux) sets the signal and execs bin, keeping the pid envtest waits on.
func orphanProof(t testing.TB, dir, bin string) string {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Logf("setpriv not found: %s would outlive a test binary that is killed", filepath.Base(bin))
		return bin
	}
	wrapper := filepath.Join(dir, filepath.Base(bin))
	script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL -- %s \"$@\"\n", shellQuote(setpriv), shellQuote(bin))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatalf("while writing %s: %v", wrapper, err)
	}
	return wrapper
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
