package policy

// targets[].restore.*: where throwaway copies run (runtime local, docker or kubernetes).

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// RestoreSpec is targets[].restore: where throwaway copies run.
type RestoreSpec struct {
	// Source is where drills get backups from: the target's own snapshots, or dump files.
	Source  RestoreSource `yaml:"source" json:"source"`
	Runtime string        `yaml:"runtime" json:"runtime"`
	Local   LocalRuntime  `yaml:"local" json:"local"`
	// Docker configures restore.runtime: docker (restore.local.scratchDir and startTimeout
	// apply to it too).
	Docker DockerRuntime `yaml:"docker" json:"docker"`
	// Kubernetes configures restore.runtime: kubernetes (restore.go).
	Kubernetes KubernetesRuntime `yaml:"kubernetes" json:"kubernetes"`
}

// RestoreSource is targets[].restore.source: where the target's drills get backups from.
type RestoreSource struct {
	// Kind is "snapshots" (the target's own snapshots), "dump" (pg_dump files in Dir),
	// basebackup, pgbackrest, or another tool's backups of an engine other than PostgreSQL
	// (rdb, mariadb-backup, mariadb-dump, mongodump).
	Kind string `yaml:"kind" json:"kind"`
	// Dir is the directory holding the dump files (kind dump) or the other engines' backups
	// (kinds rdb, mariadb-backup, mariadb-dump, mongodump).
	Dir string `yaml:"dir" json:"dir,omitempty"`
	// Pattern is a glob on the files' base names (kinds dump, rdb, mariadb-backup,
	// mariadb-dump, mongodump); checksum sidecars never match.
	Pattern string `yaml:"pattern" json:"pattern,omitempty"`
	// Jobs is pg_restore --jobs for custom and directory dumps.
	Jobs int `yaml:"jobs" json:"jobs,omitempty"`
	// DumpLocation names a locations[] entry (s3 or directory) holding the dumps or backups,
	// instead of Dir (kinds dump, basebackup and the file kinds; restore_dump.go).
	DumpLocation `yaml:",inline"`
	// PhysicalSource has the keys of kinds basebackup and pgbackrest (restore_sources.go).
	PhysicalSource `yaml:",inline"`
}

// Backup sources this build supports (restore.source.kind).
const (
	SourceSnapshots = "snapshots"
	SourceDump      = "dump"
)

var supportedSources = []string{SourceSnapshots, SourceDump, SourceBaseBackup, SourcePgBackRest, SourceRDB, SourceMariaDBBackup, SourceMariaDBDump, SourceMongoDump}

// validateSource checks restore.source's keys (p is restore.source's path).
func validateSource(p string, s RestoreSource, add addFunc) {
	oneOf(add, p+".kind", s.Kind, supportedSources)
	if s.Kind != SourceDump {
		return
	}
	switch fi, err := os.Stat(s.Dir); {
	case s.Location != "": // restore_dump.go
	case s.Dir == "":
		add(p+".dir", "required with kind dump: the directory that holds the dump files (or location: a locations[] entry)")
	case err != nil || !fi.IsDir():
		add(p+".dir", "%s is not a directory", s.Dir)
	}
	if _, err := filepath.Match(s.Pattern, ""); err != nil || strings.Contains(s.Pattern, "/") {
		add(p+".pattern", "%q is not a glob on file names (such as *.dump)", s.Pattern)
	}
	if s.Jobs < 1 || s.Jobs > 64 {
		add(p+".jobs", "must be between 1 and 64, got %d", s.Jobs)
	}
}

// Runtimes this build supports (restore.runtime).
var supportedRuntimes = []string{"local", "docker", "kubernetes"}

// How the local runtime listens (restore.local.listen).
var supportedListen = []string{"socket", "tcp"}

// validateRestore checks a target's restore keys (p is the target's path).
func validateRestore(p string, t *Target, add addFunc) {
	r := &t.Restore
	if d := r.Local.StartTimeout; d.IsSet() && d.Duration <= 0 {
		add(p+".restore.local.startTimeout", "must be greater than zero (leave it out for the default)")
	}
	validateSource(p+".restore.source", r.Source, add)
	validatePhysicalSource(p+".restore.source", r.Source, r.Runtime, add)
	validateFileSource(p+".restore.source", t, add)
	if r.Source.Kind == SourceDump && r.Runtime != "" && r.Runtime != "local" {
		add(p+".restore.runtime", "restore.source.kind dump is restored into a fresh local cluster: use restore.runtime: local (got %q)", r.Runtime)
	}
	oneOf(add, p+".restore.runtime", r.Runtime, supportedRuntimes)
	validateRuntimeDriver(p, t, add)
	oneOf(add, p+".restore.local.listen", r.Local.Listen, supportedListen)
	validateDocker(p+".restore.docker", r.Docker, add)
	validateKubernetes(p+".restore.kubernetes", r.Kubernetes, add)
	if r.Runtime == "local" {
		validateRunAs(p+".restore.local.runAsUser", r.Local.RunAsUser, add)
	}
	if r.Local.BinDir != "" {
		if fi, err := os.Stat(r.Local.BinDir); err != nil || !fi.IsDir() {
			add(p+".restore.local.binDir", "%s is not a directory", r.Local.BinDir)
		}
	}
}

// validateRuntimeDriver checks that restore.runtime can drill what snapshot.driver takes.
func validateRuntimeDriver(p string, t *Target, add addFunc) {
	if t.Restore.Runtime == "kubernetes" && t.Snapshot.Driver != "csi" {
		add(p+".restore.runtime", "restore.runtime kubernetes drills CSI snapshots: set snapshot.driver: csi (or restore.runtime: local)")
	}
}

// LocalRuntime is targets[].restore.local: it runs the throwaway database as a local process.
type LocalRuntime struct {
	// BinDir overrides the server binaries found from the snapshot's PG_VERSION.
	BinDir string `yaml:"binDir" json:"binDir,omitempty"`
	// ScratchDir is where scratch clones are made (a fresh subdirectory per drill).
	ScratchDir string `yaml:"scratchDir" json:"scratchDir"`
	// RunAsUser is the unprivileged user the server runs as when firedrill runs as root.
	RunAsUser string `yaml:"runAsUser" json:"runAsUser,omitempty"`
	// Listen is "socket" (a unix socket in the scratch directory) or "tcp" (127.0.0.1, a free port).
	Listen string `yaml:"listen" json:"listen"`
	// IsolateNetwork runs the server in an empty network namespace when firedrill is root.
	IsolateNetwork *bool `yaml:"isolateNetwork" json:"isolateNetwork,omitempty"`
	// StartTimeout bounds the server start and recovery.
	StartTimeout Duration `yaml:"startTimeout" json:"startTimeout"`
}

// validateRunAs checks that restore.local.runAsUser names a user of this machine that
// PostgreSQL can run as: the drill would otherwise fail at its start.
func validateRunAs(key, name string, add addFunc) {
	if name == "" {
		return
	}
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	switch {
	case errors.As(err, &unknown):
		add(key, "user %q does not exist on this machine: create it (useradd --system %s) or name an existing unprivileged user", name, name)
	case err != nil:
		add(key, "cannot look user %q up: %s", name, err.Error())
	case u.Uid == "0":
		add(key, "user %q is root, and PostgreSQL refuses to run as root: name an unprivileged user", name)
	}
}

// DockerRuntime is targets[].restore.docker: it runs the throwaway database in a container of a Docker engine.
type DockerRuntime struct {
	// Image is the server's image; empty: postgres:<major> of the snapshot.
	Image string `yaml:"image" json:"image,omitempty"`
	// UID is the image's database user; 0: found by running 'id postgres' in the image.
	UID int `yaml:"uid" json:"uid,omitempty"`
	// Memory limits the container (bytes, or with a unit: 512MiB, 2GiB, 1G); "0": no limit.
	Memory string `yaml:"memory" json:"memory"`
	// CPUs limits the container (1.5 = one and a half CPUs); 0: no limit.
	CPUs *float64 `yaml:"cpus" json:"cpus"`
}

// MemoryBytes is Memory in bytes (validated at load).
func (d DockerRuntime) MemoryBytes() (int64, error) { return ParseBytes(d.Memory) }

// NanoCPUs is CPUs as the Docker Engine API counts them.
func (d DockerRuntime) NanoCPUs() int64 {
	if d.CPUs == nil {
		return 0
	}
	return int64(*d.CPUs * 1e9)
}

// validateDocker checks restore.docker's keys.
func validateDocker(p string, d DockerRuntime, add addFunc) {
	if _, err := d.MemoryBytes(); err != nil {
		add(p+".memory", "%v", err)
	}
	if d.CPUs != nil && *d.CPUs < 0 {
		add(p+".cpus", "must not be negative, got %g", *d.CPUs)
	}
	if d.UID < 0 {
		add(p+".uid", "must not be negative, got %d", d.UID)
	}
	if strings.ContainsAny(d.Image, " \t\n") {
		add(p+".image", "%q is not an image reference", d.Image)
	}
}

// ParseBytes reads a size: a number of bytes, or one with a unit (K, M, G, T: powers of 1024,
// with an optional i and B: 512MiB, 2G, 1gb). Empty or "0": no limit.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	mult := map[string]int64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n < 0 {
		return 0, fmt.Errorf("%q is not a size (such as 512MiB or 2GiB)", s)
	}
	return n * mult, nil
}

// KubernetesRuntime is targets[].restore.kubernetes: the throwaway runs as a pod on a scratch PVC cloned
// from the newest VolumeSnapshot (restore.runtime: kubernetes, with snapshot.driver: csi).
type KubernetesRuntime struct {
	// Kubeconfig is a kubeconfig file; empty: snapshot.csi.kubeconfig, then $KUBECONFIG,
	// ~/.kube/config, the in-cluster service account.
	Kubeconfig string `yaml:"kubeconfig" json:"kubeconfig,omitempty"`
	// Namespace is the scratch namespace the PVC and the pod are made in (a DNS-1123 label).
	Namespace string `yaml:"namespace" json:"namespace"`
	// StorageClass of the scratch PVC; empty: the source PVC's class, else the cluster default.
	StorageClass string `yaml:"storageClass" json:"storageClass,omitempty"`
	// SnapshotNamespace is where the VolumeSnapshots are; empty: snapshot.csi.namespace.
	SnapshotNamespace string `yaml:"snapshotNamespace" json:"snapshotNamespace,omitempty"`
	// SnapshotSelector is a label selector for snapshots taken by other tools (CloudNativePG,
	// Velero, schedules); empty: firedrill's own labels for the target.
	SnapshotSelector string `yaml:"snapshotSelector" json:"snapshotSelector,omitempty"`
	// SourcePVC selects snapshots whose source is this PVC; empty: snapshot.csi.pvc.
	SourcePVC string `yaml:"sourcePVC" json:"sourcePVC,omitempty"`
	// Image is the server's image; empty: postgres:<major> of the snapshot.
	Image string `yaml:"image" json:"image,omitempty"`
	// RunAsUser is the pod's user (the official postgres image's user by default).
	RunAsUser *int64 `yaml:"runAsUser" json:"runAsUser,omitempty"`
	// FSGroup owns the mounted volume; default: RunAsUser.
	FSGroup *int64 `yaml:"fsGroup" json:"fsGroup,omitempty"`
	// SubPath is the data directory inside the volume ("" = its root; CloudNativePG: "pgdata").
	SubPath string `yaml:"subPath" json:"subPath,omitempty"`
	// Port is the server's port in the pod.
	Port int `yaml:"port" json:"port"`
	// Connect is how firedrill reaches the pod: auto (podIP in-cluster, portForward outside),
	// podIP or portForward.
	Connect   string              `yaml:"connect" json:"connect"`
	Resources KubernetesResources `yaml:"resources" json:"resources"`
	// RequireIsolation: the drill fails unless the isolation probe shows that the pod cannot
	// reach production (the Service, the API server, ProbeTargets).
	RequireIsolation bool `yaml:"requireIsolation" json:"requireIsolation"`
	// ProbeTargets are extra host:port the isolation probe must NOT reach (the production
	// Service and the API server are always probed).
	ProbeTargets []string           `yaml:"probeTargets" json:"probeTargets,omitempty"`
	Timeouts     KubernetesTimeouts `yaml:"timeouts" json:"timeouts"`
}

// KubernetesResources is targets[].restore.kubernetes.resources: the pod's requests and limits, by
// resource name (cpu, memory, ephemeral-storage) in Kubernetes quantities (250m, 512Mi). A map
// left out gets the defaults (DefaultKubernetes*); one given replaces them whole ({} for none).
type KubernetesResources struct {
	Requests map[string]string `yaml:"requests" json:"requests,omitempty"`
	Limits   map[string]string `yaml:"limits" json:"limits,omitempty"`
}

// KubernetesTimeouts is targets[].restore.kubernetes.timeouts: how long each phase of the pod may take.
type KubernetesTimeouts struct {
	// Bind bounds the scratch PVC's wait to be bound (the clone from the snapshot).
	Bind Duration `yaml:"bind" json:"bind"`
	// Schedule bounds the pod's wait for a node.
	Schedule Duration `yaml:"schedule" json:"schedule"`
	// Start bounds the pod's start (image pull, container start).
	Start Duration `yaml:"start" json:"start"`
	// Ready bounds the server's recovery until it accepts connections.
	Ready Duration `yaml:"ready" json:"ready"`
}

// How firedrill reaches a Kubernetes throwaway (restore.kubernetes.connect).
const (
	KubernetesConnectAuto        = "auto"
	KubernetesConnectPodIP       = "podIP"
	KubernetesConnectPortForward = "portForward"
)

var (
	supportedKubernetesConnect   = []string{KubernetesConnectAuto, KubernetesConnectPodIP, KubernetesConnectPortForward}
	supportedKubernetesResources = []string{"cpu", "memory", "ephemeral-storage"}
)

// validateKubernetes checks restore.kubernetes's keys.
func validateKubernetes(p string, k KubernetesRuntime, add addFunc) {
	if errs := validation.IsDNS1123Label(k.Namespace); len(errs) > 0 {
		add(p+".namespace", "%q is not a valid namespace name: %s", k.Namespace, strings.Join(errs, "; "))
	}
	if k.SnapshotNamespace != "" {
		if errs := validation.IsDNS1123Label(k.SnapshotNamespace); len(errs) > 0 {
			add(p+".snapshotNamespace", "%q is not a valid namespace name: %s", k.SnapshotNamespace, strings.Join(errs, "; "))
		}
	}
	if k.StorageClass != "" && len(validation.IsDNS1123Subdomain(k.StorageClass)) > 0 {
		add(p+".storageClass", "%q is not a valid object name", k.StorageClass)
	}
	if k.SourcePVC != "" && len(validation.IsDNS1123Subdomain(k.SourcePVC)) > 0 {
		add(p+".sourcePVC", "%q is not a valid object name", k.SourcePVC)
	}
	if k.SnapshotSelector != "" {
		if _, err := labels.Parse(k.SnapshotSelector); err != nil {
			add(p+".snapshotSelector", "not a label selector: %s", err.Error())
		}
	}
	if strings.ContainsAny(k.Image, " \t\n") {
		add(p+".image", "%q is not an image reference", k.Image)
	}
	if k.RunAsUser != nil && *k.RunAsUser < 0 {
		add(p+".runAsUser", "must not be negative, got %d", *k.RunAsUser)
	}
	if k.FSGroup != nil && *k.FSGroup < 0 {
		add(p+".fsGroup", "must not be negative, got %d", *k.FSGroup)
	}
	if strings.HasPrefix(k.SubPath, "/") || slices.Contains(strings.Split(k.SubPath, "/"), "..") {
		add(p+".subPath", "%q must be a relative path inside the volume", k.SubPath)
	}
	if k.Port < 1 || k.Port > 65535 {
		add(p+".port", "must be between 1 and 65535, got %d", k.Port)
	}
	oneOf(add, p+".connect", k.Connect, supportedKubernetesConnect)
	validateQuantities(p+".resources.requests", k.Resources.Requests, add)
	validateQuantities(p+".resources.limits", k.Resources.Limits, add)
	for j, pt := range k.ProbeTargets {
		host, port, err := net.SplitHostPort(pt)
		if err == nil && (host == "" || port == "") {
			err = fmt.Errorf("host and port are both required")
		}
		if err != nil {
			add(fmt.Sprintf("%s.probeTargets[%d]", p, j), "%q is not host:port: %s", pt, err.Error())
		}
	}
	for _, to := range []struct {
		key string
		d   Duration
	}{{"bind", k.Timeouts.Bind}, {"schedule", k.Timeouts.Schedule}, {"start", k.Timeouts.Start}, {"ready", k.Timeouts.Ready}} {
		if to.d.Duration <= 0 {
			add(p+".timeouts."+to.key, "must be greater than zero (leave it out for the default)")
		}
	}
}

// validateQuantities checks a requests or limits map: known resource names, Kubernetes quantities.
func validateQuantities(p string, m map[string]string, add addFunc) {
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(supportedKubernetesResources, name) {
			add(p+"."+name, "%q is not supported (supported: %s)", name, strings.Join(supportedKubernetesResources, ", "))
			continue
		}
		if _, err := resource.ParseQuantity(m[name]); err != nil {
			add(p+"."+name, "%q is not a quantity (such as 250m, 512Mi or 2Gi): %s", m[name], err.Error())
		}
	}
}
