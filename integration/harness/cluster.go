package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Versions of the e2e cluster's Go-built parts. integration/setup/gotools.sh builds each into
// $FIREDRILL_CACHE_DIR/bin/<name>-<version> from the tools modules under integration/tools.
const (
	SnapshotterVersion = "v8.7.0" // snapshot-controller and csi-snapshotter
	ProvisionerVersion = "v6.3.0" // csi-provisioner
)

// The cluster's fixed addresses. The node's IP is the gateway of a bridge the harness creates
// (pods hang off it through the CNI bridge plugin); the API server listens there, and the
// `kubernetes` Service's ClusterIP is forwarded to it by one iptables DNAT rule, since no
// kube-proxy runs. Only one e2e cluster runs on a machine at a time (a lock file says so).
const (
	clusterBridge    = "fde2e0"
	clusterNodeIP    = "10.89.0.1"
	clusterPodCIDR   = "10.89.0.0/16"
	clusterSvcCIDR   = "10.96.0.0/24"
	clusterAPIVIP    = "10.96.0.1"
	ClusterNodeName  = "firedrill-e2e"
	clusterLockFile  = "/run/firedrill-e2e.lock"
	clusterPauseName = "local/pause:e2e"
)

// ClusterCSIDriver, ClusterStorageClass and ClusterSnapshotClass are the test CSI driver
// (integration/csidriver) as installed on the e2e cluster.
const (
	ClusterCSIDriver     = "hostdir.csi.firedrill.io"
	ClusterStorageClass  = "firedrill-hostdir"
	ClusterSnapshotClass = "firedrill-hostdir"
)

// Cluster is a real single-node Kubernetes cluster private to one test: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and a kubelet on a private containerd with a CNI
// bridge network, the CSI snapshot controller, the csi-provisioner and csi-snapshotter sidecars,
// and the directory-backed test CSI driver registered with the kubelet. Images are built
// locally (no registry is reachable) and imported into containerd.
type Cluster struct {
	// Config authenticates as a cluster admin (system:masters); Kubeconfig is the same as a file.
	Config     *rest.Config
	Kubeconfig string
	Clientset  kubernetes.Interface
	Snapshots  snapshotclient.Interface
	// Dir holds every component's state and log (<Dir>/logs).
	Dir string
	// CSIRoot is the test CSI driver's root: volumes/<id> and snapshots/<id> directories.
	CSIRoot string
	// Images are the locally built images, by role: "postgres", "firedrill", "pause".
	Images map[string]string
	// Timings are the durations of the start's steps, in order.
	Timings []Timing

	containerdSock string
	saKey          string // the ServiceAccount token signing key, for the controller manager
}

// Timing is one step of a cluster start and how long it took.
type Timing struct {
	Step string
	Took time.Duration
}

// StartCluster starts the e2e cluster and tears it down (pods, containers, mounts, the bridge and
// the DNAT rule, every file) when the test ends. It needs root and the binaries gotools.sh builds;
// it calls Missing otherwise.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	Integration(t)
	if os.Geteuid() != 0 {
		Missing(t, "e2e cluster", "the kubelet, containerd and the CSI driver's mounts need root", "run the e2e tests as root (make e2e)")
	}
	bins := map[string]string{}
	for name, version := range map[string]string{
		"kube-apiserver": KubeAPIServerVersion, "kube-controller-manager": KubeAPIServerVersion,
		"kube-scheduler": KubeAPIServerVersion, "kubelet": KubeAPIServerVersion,
		"snapshot-controller": SnapshotterVersion, "csi-snapshotter": SnapshotterVersion,
		"csi-provisioner": ProvisionerVersion,
	} {
		p := filepath.Join(CacheDir(), "bin", name+"-"+version)
		if _, err := os.Stat(p); err != nil {
			Missing(t, name+" "+version, "no "+p, "run `make setup` (integration/setup/gotools.sh builds it)")
		}
		bins[name] = p
	}
	etcdBin, err := newestEtcd(filepath.Join(CacheDir(), "bin"))
	if err != nil {
		Missing(t, "etcd", err.Error(), "run `make setup`")
	}
	bins["etcd"] = etcdBin
	for _, tool := range []string{"containerd", "ctr", "runc", "iptables", "ip", "docker"} {
		p, err := findBinary(tool)
		if err != nil {
			Missing(t, tool, err.Error(), "run `make setup` (integration/setup/apt.sh installs it)")
		}
		bins[tool] = p
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		Missing(t, "CNI plugins", "no /usr/lib/cni/bridge", "run `make setup` (containernetworking-plugins)")
	}
	RequireDocker(t, PostgresImage)

	lock, err := os.OpenFile(clusterLockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("while opening %s: %v", clusterLockFile, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("another e2e cluster runs on this machine (%s is locked); one at a time", clusterLockFile)
	}
	t.Cleanup(func() { lock.Close() })

	c := &Cluster{Images: map[string]string{}}
	// Short: unix socket paths (containerd, CSI) are limited to 107 bytes.
	c.Dir, err = os.MkdirTemp("", "fde2e-")
	if err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(c.Dir, "logs")
	for _, d := range []string{logs, filepath.Join(c.Dir, "pki")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Registered first, so it runs last: after every process is stopped.
	t.Cleanup(func() { c.removeAll(t) })

	start := time.Now()
	step := func(name string, f func()) {
		t.Helper()
		s := time.Now()
		f()
		c.Timings = append(c.Timings, Timing{name, time.Since(s)})
	}

	var pki *clusterPKI
	step("certificates", func() {
		if pki, err = newClusterPKI(filepath.Join(c.Dir, "pki")); err != nil {
			t.Fatal(err)
		}
	})
	step("network", func() { c.startNetwork(t, bins) })

	etcdPort, etcdPeer := FreePort(t), FreePort(t)
	apiPort := freePortOn(t, clusterNodeIP)
	server := fmt.Sprintf("https://%s:%d", clusterNodeIP, apiPort)
	step("etcd", func() {
		d := startDaemon(t, "etcd", exec.Command(bins["etcd"],
			"--data-dir", filepath.Join(c.Dir, "etcd"),
			"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
			"--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
			"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
			"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
			"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", etcdPeer),
			"--unsafe-no-fsync"), filepath.Join(logs, "etcd.log"), 10*time.Second)
		d.waitReady(t, 30*time.Second, func() error { return dial(fmt.Sprintf("127.0.0.1:%d", etcdPort)) })
	})

	var adminCert, adminKey []byte
	step("kube-apiserver", func() {
		_, _, srvCert, srvKey, err := pki.issue("apiserver", "kube-apiserver", nil,
			[]net.IP{net.ParseIP(clusterNodeIP), net.ParseIP(clusterAPIVIP), net.ParseIP("127.0.0.1")},
			[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		saKey, saPub, err := pki.serviceAccountKeys()
		if err != nil {
			t.Fatal(err)
		}
		if adminCert, adminKey, _, _, err = pki.issue("admin", "firedrill-e2e-admin", []string{"system:masters"}, nil, nil); err != nil {
			t.Fatal(err)
		}
		_, _, kcCert, kcKey, err := pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Kubeconfig, err = pki.kubeconfig("admin", server, adminCert, adminKey); err != nil {
			t.Fatal(err)
		}
		// The ServiceAccount signing keys are also what the controller manager signs with.
		c.saKey = saKey
		d := startDaemon(t, "kube-apiserver", exec.Command(bins["kube-apiserver"],
			"--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
			"--bind-address", clusterNodeIP, "--advertise-address", clusterNodeIP,
			"--secure-port", fmt.Sprint(apiPort),
			"--tls-cert-file", srvCert, "--tls-private-key-file", srvKey,
			"--client-ca-file", pki.caFile(),
			"--kubelet-client-certificate", kcCert, "--kubelet-client-key", kcKey,
			"--kubelet-preferred-address-types", "InternalIP",
			"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
			"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
			"--service-cluster-ip-range", clusterSvcCIDR,
			"--authorization-mode", "Node,RBAC",
			"--allow-privileged=true", "--profiling=false",
		), filepath.Join(logs, "kube-apiserver.log"), 15*time.Second)
		cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		cfg.QPS, cfg.Burst = 200, 400
		c.Config = cfg
		if c.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
			t.Fatal(err)
		}
		if c.Snapshots, err = snapshotclient.NewForConfig(cfg); err != nil {
			t.Fatal(err)
		}
		d.waitReady(t, 90*time.Second, func() error {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err
		})
	})
	c.forwardServiceIP(t, bins, apiPort)

	step("snapshot CRDs and the CSI driver's classes", func() {
		crds, err := loadSnapshotCRDs()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := envtest.InstallCRDs(c.Config, envtest.CRDInstallOptions{CRDs: crds}); err != nil {
			t.Fatalf("while installing the snapshot CRDs: %v", err)
		}
		c.Apply(t, filepath.Join(integrationDir(), "csidriver", "deploy"))
	})

	step("controller manager and scheduler", func() {
		// With --use-service-account-credentials=false every controller runs as this one user, which
		// needs more than system:kube-controller-manager's own role: an admin, on a test cluster.
		kcm := c.clientKubeconfig(t, pki, server, "kube-controller-manager", "system:kube-controller-manager", []string{"system:masters"})
		startDaemon(t, "kube-controller-manager", exec.Command(bins["kube-controller-manager"],
			"--kubeconfig", kcm, "--authentication-kubeconfig", kcm, "--authorization-kubeconfig", kcm,
			"--service-account-private-key-file", c.saKey, "--root-ca-file", pki.caFile(),
			"--use-service-account-credentials=false", "--leader-elect=false",
			"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(FreePort(t)),
			"--cluster-name", "firedrill-e2e",
		), filepath.Join(logs, "kube-controller-manager.log"), 10*time.Second)
		sch := c.clientKubeconfig(t, pki, server, "kube-scheduler", "system:kube-scheduler", nil)
		startDaemon(t, "kube-scheduler", exec.Command(bins["kube-scheduler"],
			"--kubeconfig", sch, "--authentication-kubeconfig", sch, "--authorization-kubeconfig", sch,
			"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(FreePort(t)),
		), filepath.Join(logs, "kube-scheduler.log"), 10*time.Second)
	})

	step("images", func() { c.buildImages(t, bins) })
	step("containerd", func() { c.startContainerd(t, bins) })
	step("image import", func() { c.importImages(t, bins) })

	kubeletRoot := filepath.Join(c.Dir, "kubelet")
	step("CSI driver and sidecars", func() {
		c.CSIRoot = filepath.Join(c.Dir, "csi")
		c.mountBtrfs(t, c.CSIRoot)
		pluginDir := filepath.Join(kubeletRoot, "plugins", ClusterCSIDriver)
		sock := filepath.Join(pluginDir, "csi.sock")
		driver := goBuild(t, c.Dir, "firedrill-csi-hostdir", integrationDir(), "./csidriver/cmd/firedrill-csi-hostdir")
		startDaemon(t, "csi driver", exec.Command(driver, "-endpoint", "unix://"+sock, "-root", c.CSIRoot,
			"-nodeid", ClusterNodeName, "-kubelet-registry", filepath.Join(kubeletRoot, "plugins_registry"), "-debug"),
			filepath.Join(logs, "csi-driver.log"), 10*time.Second)
		prov := c.clientKubeconfig(t, pki, server, "csi-provisioner", "firedrill-e2e-csi-provisioner", []string{"system:masters"})
		startDaemon(t, "csi-provisioner", exec.Command(bins["csi-provisioner"], "--csi-address", sock, "--kubeconfig", prov,
			"--leader-election=false", "--timeout=60s", "--extra-create-metadata"),
			filepath.Join(logs, "csi-provisioner.log"), 10*time.Second)
		snap := c.clientKubeconfig(t, pki, server, "csi-snapshotter", "firedrill-e2e-csi-snapshotter", []string{"system:masters"})
		startDaemon(t, "csi-snapshotter", exec.Command(bins["csi-snapshotter"], "--csi-address", sock, "--kubeconfig", snap,
			"--leader-election=false", "--timeout=60s", "--extra-create-metadata"),
			filepath.Join(logs, "csi-snapshotter.log"), 10*time.Second)
		ctl := c.clientKubeconfig(t, pki, server, "snapshot-controller", "firedrill-e2e-snapshot-controller", []string{"system:masters"})
		startDaemon(t, "snapshot-controller", exec.Command(bins["snapshot-controller"], "--kubeconfig", ctl, "--leader-election=false"),
			filepath.Join(logs, "snapshot-controller.log"), 10*time.Second)
	})

	step("kubelet", func() { c.startKubelet(t, bins, pki, server, kubeletRoot) })
	step("node ready", func() { c.waitNodeReady(t) })

	var parts []string
	for _, s := range c.Timings {
		parts = append(parts, fmt.Sprintf("%s %s", s.Step, s.Took.Round(10*time.Millisecond)))
	}
	logComponent(t, "e2e-cluster", KubeAPIServerVersion, fmt.Sprintf("node %s ready at %s in %s: %s",
		ClusterNodeName, server, time.Since(start).Round(100*time.Millisecond), strings.Join(parts, ", ")))
	return c
}

// clientKubeconfig issues a client certificate for cn in orgs and writes its kubeconfig.
func (c *Cluster) clientKubeconfig(t testing.TB, pki *clusterPKI, server, name, cn string, orgs []string) string {
	t.Helper()
	cert, key, _, _, err := pki.issue(name, cn, orgs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	path, err := pki.kubeconfig(name, server, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// mountBtrfs mounts a fresh btrfs filesystem (a sparse 8 GiB image on a loop device) at dir,
// so the CSI driver keeps volumes in subvolumes and takes atomic snapshots: what a crash-
// consistent snapshot of a database being written needs.
func (c *Cluster) mountBtrfs(t testing.TB, dir string) {
	t.Helper()
	img := filepath.Join(c.Dir, "csi.img")
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(8 << 30)
		f.Close()
	}
	if err != nil {
		t.Fatalf("while creating the CSI driver's btrfs image: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs (btrfs-progs, installed by make setup): %v\n%s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Fatalf("while mounting the CSI driver's btrfs image on a loop device: %v\n%s", err, out)
	}
}

// startNetwork creates the bridge the CNI plugin attaches pods to, with the node's IP on it.
func (c *Cluster) startNetwork(t testing.TB, bins map[string]string) {
	t.Helper()
	// A bridge left by a run that was killed: ours by name, so remove it.
	_ = exec.Command(bins["ip"], "link", "del", clusterBridge).Run()
	for _, args := range [][]string{
		{"link", "add", clusterBridge, "type", "bridge"},
		{"addr", "add", clusterNodeIP + "/16", "dev", clusterBridge},
		{"link", "set", clusterBridge, "up"},
	} {
		if out, err := exec.Command(bins["ip"], args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command(bins["ip"], "link", "del", clusterBridge).Run() })
	// Docker (which runs here) loads br_netfilter and sets the FORWARD policy to DROP: bridged
	// traffic between two pods would be dropped. Pods of the cluster may talk to each other (the
	// runner to the throwaway by pod IP), as on any cluster whose CNI enforces no policy.
	rule := []string{"FORWARD", "-i", clusterBridge, "-o", clusterBridge, "-m", "comment", "--comment", "firedrill-e2e", "-j", "ACCEPT"}
	_ = exec.Command(bins["iptables"], append([]string{"-D"}, rule...)...).Run() // a killed run's
	if out, err := exec.Command(bins["iptables"], append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("while letting pods of the bridge reach each other: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(bins["iptables"], append([]string{"-D"}, rule...)...).Run() })
}

// forwardServiceIP makes the `kubernetes` Service's ClusterIP reach the API server from pods, as
// kube-proxy would: one DNAT rule, removed at teardown.
func (c *Cluster) forwardServiceIP(t testing.TB, bins map[string]string, apiPort int) {
	t.Helper()
	rule := []string{"PREROUTING", "-t", "nat", "-d", clusterAPIVIP + "/32", "-p", "tcp", "--dport", "443",
		"-m", "comment", "--comment", "firedrill-e2e", "-j", "DNAT", "--to-destination", fmt.Sprintf("%s:%d", clusterNodeIP, apiPort)}
	if out, err := exec.Command(bins["iptables"], append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("while adding the DNAT rule for the kubernetes Service: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(bins["iptables"], append([]string{"-D"}, rule...)...).Run() })
}

// buildImages builds the pause and firedrill images with Docker (the PostgreSQL image comes from
// integration/setup) and saves each to a tarball in the cache, keyed by the image's ID.
func (c *Cluster) buildImages(t testing.TB, bins map[string]string) {
	t.Helper()
	ctx := t.Context()
	ctxDir := filepath.Join(c.Dir, "images")
	pauseDir, fdDir := filepath.Join(ctxDir, "pause"), filepath.Join(ctxDir, "firedrill")
	for _, d := range []string{pauseDir, fdDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	goBuild(t, pauseDir, "pause", integrationDir(), "./cmd/e2e-pause")
	writeFile(t, filepath.Join(pauseDir, "Dockerfile"), "FROM scratch\nCOPY pause /pause\nENTRYPOINT [\"/pause\"]\n")
	goBuild(t, fdDir, "firedrill", filepath.Dir(integrationDir()), "./cmd/firedrill")
	// The product image of deploy/Dockerfile pulls golang and debian base images, which no
	// registry here serves: this one has the same contents on the locally built PostgreSQL
	// image (the binary, the PostgreSQL 15 tools, uid 65532).
	writeFile(t, filepath.Join(fdDir, "Dockerfile"), "FROM "+PostgresImage+"\n"+
		"RUN groupadd --gid 65532 firedrill && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin firedrill\n"+
		"COPY firedrill /usr/local/bin/firedrill\nUSER 65532:65532\nENTRYPOINT [\"/usr/local/bin/firedrill\"]\n")
	for name, dir := range map[string]string{clusterPauseName: pauseDir, "local/firedrill:e2e": fdDir} {
		out, err := exec.CommandContext(ctx, bins["docker"], "build", "-q", "-t", name, dir).CombinedOutput()
		if err != nil {
			t.Fatalf("while building image %s: %v\n%s", name, err, out)
		}
	}
	c.Images["pause"], c.Images["firedrill"], c.Images["postgres"] = clusterPauseName, "local/firedrill:e2e", PostgresImage
	// The engines' image (Redis, MariaDB) when integration/setup built it: their scenarios
	// skip without it.
	if exec.CommandContext(ctx, bins["docker"], "image", "inspect", EnginesImage).Run() == nil {
		c.Images["engines"] = EnginesImage
	}
}

func (c *Cluster) startContainerd(t testing.TB, bins map[string]string) {
	t.Helper()
	dir := filepath.Join(c.Dir, "containerd")
	cni := filepath.Join(c.Dir, "cni")
	for _, d := range []string{dir, cni} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.containerdSock = filepath.Join(dir, "c.sock")
	writeFile(t, filepath.Join(cni, "10-firedrill-e2e.conflist"), fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "firedrill-e2e",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}}
  ]
}
`, clusterBridge, clusterPodCIDR, clusterNodeIP, filepath.Join(c.Dir, "cni-ipam")))
	cfg := filepath.Join(dir, "config.toml")
	// restrict_oom_score_adj: this sandbox forbids negative oom_score_adj; without it every pod
	// sandbox fails with "runc create failed: can't get final child's PID from pipe: EOF".
	writeFile(t, cfg, fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.containerdSock, c.containerdSock+".ttrpc", clusterPauseName, cni))
	d := startDaemon(t, "containerd", exec.Command(bins["containerd"], "--config", cfg),
		filepath.Join(c.Dir, "logs", "containerd.log"), 15*time.Second)
	d.waitReady(t, 30*time.Second, func() error {
		return exec.Command(bins["ctr"], "--address", c.containerdSock, "version").Run()
	})
	// The kubelet and containerd stop before this runs (cleanups run last first); what a pod
	// left behind dies here: shims run in their own sessions, outside containerd's group.
	t.Cleanup(func() { c.killShims(t) })
}

// importImages saves each image from Docker (cached by image ID) and imports it into
// containerd's k8s.io namespace, where the kubelet looks.
func (c *Cluster) importImages(t testing.TB, bins map[string]string) {
	t.Helper()
	ctx := t.Context()
	cache := filepath.Join(CacheDir(), "images", "e2e")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"pause", "postgres", "firedrill", "engines"} {
		name := c.Images[role]
		if name == "" {
			continue
		}
		id, err := exec.CommandContext(ctx, bins["docker"], "image", "inspect", "--format", "{{.Id}}", name).Output()
		if err != nil {
			t.Fatalf("while inspecting image %s: %v", name, err)
		}
		tar := filepath.Join(cache, strings.NewReplacer("/", "_", ":", "_").Replace(name)+"-"+strings.TrimPrefix(strings.TrimSpace(string(id)), "sha256:")[:16]+".tar")
		if _, err := os.Stat(tar); err != nil {
			tmp := tar + ".tmp"
			if out, err := exec.CommandContext(ctx, bins["docker"], "save", "-o", tmp, name).CombinedOutput(); err != nil {
				t.Fatalf("while saving image %s: %v\n%s", name, err, out)
			}
			if err := os.Rename(tmp, tar); err != nil {
				t.Fatal(err)
			}
			pruneImageCache(cache, tar, name)
		}
		if out, err := exec.CommandContext(ctx, bins["ctr"], "--address", c.containerdSock, "-n", "k8s.io", "images", "import", tar).CombinedOutput(); err != nil {
			t.Fatalf("while importing image %s into containerd: %v\n%s", name, err, out)
		}
	}
}

// pruneImageCache removes older tarballs of the same image (other IDs).
func pruneImageCache(cache, keep, name string) {
	prefix := strings.NewReplacer("/", "_", ":", "_").Replace(name) + "-"
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if p := filepath.Join(cache, e.Name()); strings.HasPrefix(e.Name(), prefix) && p != keep {
			_ = os.Remove(p)
		}
	}
}

func (c *Cluster) startKubelet(t testing.TB, bins map[string]string, pki *clusterPKI, server, root string) {
	t.Helper()
	kc := c.clientKubeconfig(t, pki, server, "kubelet", "system:node:"+ClusterNodeName, []string{"system:nodes"})
	port := freePortOn(t, clusterNodeIP)
	cfg := filepath.Join(c.Dir, "kubelet.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzPort: 0
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
localStorageCapacityIsolation: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: "50Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
serializeImagePulls: false
`, clusterNodeIP, port, c.containerdSock, pki.caFile()))
	startDaemon(t, "kubelet", exec.Command(bins["kubelet"], "--config", cfg, "--kubeconfig", kc,
		"--root-dir", root, "--hostname-override", ClusterNodeName, "--node-ip", clusterNodeIP, "--v", "2"),
		filepath.Join(c.Dir, "logs", "kubelet.log"), 20*time.Second)
	// Before the kubelet stops (cleanups run last first): delete every pod, so the kubelet
	// unmounts volumes and stops containers itself.
	t.Cleanup(func() { c.deleteAllPods(t) })
}

func (c *Cluster) waitNodeReady(t testing.TB) {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		node, err := c.Clientset.CoreV1().Nodes().Get(ctx, ClusterNodeName, metav1.GetOptions{})
		ready := false
		if err == nil {
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready = true
				}
			}
		}
		csiReady := false
		if ready {
			if cn, err := c.Clientset.StorageV1().CSINodes().Get(ctx, ClusterNodeName, metav1.GetOptions{}); err == nil {
				csiReady = slices.ContainsFunc(cn.Spec.Drivers, func(d storagev1.CSINodeDriver) bool { return d.Name == ClusterCSIDriver })
			}
		}
		_, saErr := c.Clientset.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if ready && csiReady && saErr == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not ready with the CSI driver registered within 2m (node ready %v, CSI driver registered %v, default ServiceAccount %v); end of the kubelet's log:\n%s",
				ClusterNodeName, ready, csiReady, saErr, fileTail(filepath.Join(c.Dir, "logs", "kubelet.log"), 30))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// deleteAllPods deletes every pod and waits (bounded) until the kubelet has stopped them.
func (c *Cluster) deleteAllPods(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nss, err := c.Clientset.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("e2e cluster teardown: listing namespaces: %v", err)
		return
	}
	zero := int64(0)
	for _, ns := range nss.Items {
		_ = c.Clientset.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	}
	for ctx.Err() == nil {
		pods, err := c.Clientset.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("e2e cluster teardown: pods still present after 90s; their containers are killed with containerd's shims")
}

// killShims kills what is left of pods once containerd is stopped: runc shims of this
// containerd (they name its socket on their command line) and their containers.
func (c *Cluster) killShims(t testing.TB) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), c.containerdSock) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid); err == nil && pid != os.Getpid() {
			// The shim's children (the containers' processes) are in its session.
			if sid, err := getsid(pid); err == nil && sid == pid {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeAll unmounts whatever is still mounted under the cluster's directory (pod volumes, the
// CSI driver's bind mounts, containerd's overlays), deepest first, then removes it.
func (c *Cluster) removeAll(t testing.TB) {
	for range 3 {
		mounts := mountsUnder(c.Dir)
		if len(mounts) == 0 {
			break
		}
		for _, m := range mounts {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				t.Logf("e2e cluster teardown: unmounting %s: %v", m, err)
			}
		}
	}
	if keep := os.Getenv("FIREDRILL_E2E_KEEP"); keep != "" {
		t.Logf("e2e cluster: FIREDRILL_E2E_KEEP set, %s kept", c.Dir)
		return
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Errorf("e2e cluster teardown: removing %s: %v", c.Dir, err)
	}
}

// mountsUnder lists mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}

// Apply creates every object of the YAML files in path (a file or a directory) with
// server-side apply, as `kubectl apply --server-side` would.
func (c *Cluster) Apply(t testing.TB, path string) {
	t.Helper()
	applyYAML(t, c.Config, path)
}

// Logs returns the end of a component's log ("kubelet", "csi-provisioner", ...), for failure
// messages.
func (c *Cluster) Logs(component string, lines int) string {
	return fileTail(filepath.Join(c.Dir, "logs", component+".log"), lines)
}

func integrationDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// goBuild builds pkg in module dir moduleDir into dir/name (static, so it runs in any image).
func goBuild(t testing.TB, dir, name, moduleDir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("while building %s: %v\n%s", pkg, err, b)
	}
	return out
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freePortOn(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("while finding a free port on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func dial(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

func getsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
}
