package kubernetes

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/snapshot/csi"
	"github.com/firedrill/firedrill/restore/source/volumesnapshot"
)

// Paths inside the throwaway pod.
const (
	DataMount   = "/var/lib/postgresql/data"
	WALMount    = "/var/lib/postgresql/wal"
	FilesMount  = "/firedrill"
	SocketMount = "/var/run/postgresql"
	TmpMount    = "/tmp"
	// ProbeContainer is the init container that tries production's endpoints; its
	// termination message holds one "endpoint open|closed detail" line each.
	ProbeContainer   = "isolation-probe"
	PrepareContainer = "prepare"
	ServerContainer  = "postgres"
	// EngineMount is where an engine's pod (Redis, MariaDB) mounts the data volume, and
	// EngineContainer names its server's container.
	EngineMount     = "/var/lib/firedrill/data"
	EngineContainer = "server"
	// RoleThrowaway marks the throwaway's pod, ConfigMap and NetworkPolicy.
	RoleThrowaway = "throwaway"
	// prepareDamaged is the prepare container's exit code when the copy's pg_control cannot be
	// read: the backup is damaged (a failed recovery, exit 1), not a platform error (exit 3).
	prepareDamaged = 3
	RoleExec       = "exec"
)

// podSpec is what one throwaway pod is built from.
type podSpec struct {
	Name, Namespace, DrillID, Target string
	Image                            string
	RunAsUser, FSGroup               int64
	SubPath                          string
	Port                             int
	Volumes                          []drill.Volume
	Requests, Limits                 corev1.ResourceList
	ProbeTargets                     []string
	// RunnerLabels select the firedrill runner's pods (in-cluster) for the NetworkPolicy's
	// ingress rule; RunnerCIDR admits it by address. Neither: port-forward only.
	RunnerLabels map[string]string
	RunnerCIDR   string
	// Keep marks the objects of a --keep drill, which sweeps leave alone.
	Keep bool
	// Mount is where the data volume is mounted (empty: DataMount, PostgreSQL's); Server
	// names the server's container (empty: ServerContainer); Env is the containers'
	// environment (nil: PostgreSQL's PGDATA and HOME).
	Mount  string
	Server string
	Env    []corev1.EnvVar
}

func (p podSpec) dataMount() string {
	if p.Mount == "" {
		return DataMount
	}
	return p.Mount
}

func (p podSpec) serverContainer() string {
	if p.Server == "" {
		return ServerContainer
	}
	return p.Server
}

func (p podSpec) labels(role string) map[string]string {
	l := map[string]string{volumesnapshot.LabelManagedBy: volumesnapshot.ManagedByValue, volumesnapshot.LabelDrillID: p.DrillID,
		volumesnapshot.LabelTarget: csi.LabelValue(p.Target), volumesnapshot.LabelRole: role, "app.kubernetes.io/name": "firedrill-throwaway"}
	if p.Keep {
		l[LabelKept] = "true"
	}
	return l
}

// DataDir is the copy's data directory inside the pod.
func (p podSpec) DataDir() string {
	if p.SubPath == "" {
		return p.dataMount()
	}
	return p.dataMount() + "/" + strings.Trim(p.SubPath, "/")
}

// configMap holds backup_label, tablespace_map, the server's configuration and the scripts.
func (p podSpec) configMap(files map[string][]byte) *corev1.ConfigMap {
	hba := "# Written by firedrill: only the drill connects.\nlocal all all trust\nhost all all 127.0.0.1/32 trust\n"
	if p.RunnerCIDR != "" {
		hba += "host all all " + p.RunnerCIDR + " trust\n"
	}
	conf := postgres.ThrowawayConfig(postgres.RestoreOptions{ListenAddresses: "*", Port: p.Port, SocketDir: SocketMount})
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.labels(RoleThrowaway)},
		Data: map[string]string{
			"postgresql.conf": conf, "pg_hba.conf": hba,
			"prepare.sh": p.prepareScript(), "probe.sh": probeScript,
			"probe-targets": strings.Join(p.ProbeTargets, "\n") + "\n",
		},
		BinaryData: map[string][]byte{},
	}
	for _, name := range []string{postgres.BackupLabelFile, postgres.TablespaceMapFile} {
		if b, ok := files[name]; ok && len(b) > 0 {
			cm.BinaryData[name] = b
		}
	}
	return cm
}

// prepareScript does in the pod what postgres.PrepareRestore does to a local copy: backup_label
// and tablespace_map written back, signal files removed, firedrill's own configuration, and the
// settings pg_control needs at least as large as the primary's.
func (p podSpec) prepareScript() string {
	var b strings.Builder
	b.WriteString(`set -eu
D="$PGDATA"
F=` + FilesMount + `
if [ ! -f "$D/PG_VERSION" ]; then echo "firedrill: no PG_VERSION in $D: is restore.kubernetes.subPath right?" >&2; ls -la "$(dirname "$D")" >&2; exit 2; fi
for f in backup_label tablespace_map; do
  if [ -f "$F/$f" ]; then cp "$F/$f" "$D/$f"; chmod 0600 "$D/$f"; fi
done
if [ -f "$D/tablespace_map" ]; then rm -rf "$D"/pg_tblspc/*; fi
rm -f "$D/standby.signal" "$D/recovery.signal" "$D/recovery.conf" "$D/postmaster.pid" "$D/postmaster.opts"
if [ -d ` + WALMount + ` ]; then
  # The WAL volume: a WAL PVC (pg_wal's content, or a pg_wal directory), or a copy of the data
  # volume cut after pg_backup_stop (its pg_wal under the same subPath).
  W=` + WALMount + `
  if [ -d "$W/pg_wal" ]; then W="$W/pg_wal"; elif [ -d "$W/` + strings.Trim(p.SubPath, "/") + `/pg_wal" ]; then W="$W/` + strings.Trim(p.SubPath, "/") + `/pg_wal"; fi
  rm -rf "$D/pg_wal"; ln -s "$W" "$D/pg_wal"
fi
for d in pg_wal/archive_status pg_replslot pg_stat_tmp pg_dynshmem pg_notify pg_serial pg_snapshots pg_subtrans pg_tblspc pg_logical/snapshots pg_logical/mappings; do mkdir -p "$D/$d"; done
cp "$F/postgresql.conf" "$D/postgresql.conf"
cp "$F/pg_hba.conf" "$D/pg_hba.conf"
echo "# Emptied by firedrill: ALTER SYSTEM settings belong to production." > "$D/postgresql.auto.conf"
: > "$D/pg_ident.conf"
chmod 0600 "$D/postgresql.conf" "$D/pg_hba.conf" "$D/postgresql.auto.conf" "$D/pg_ident.conf"
chmod 0700 "$D"
CD=$(pg_controldata "$D") || { echo "firedrill: pg_controldata cannot read the restored copy's pg_control: the backup is damaged" >&2; exit ` + strconv.Itoa(prepareDamaged) + `; }
atleast() { v=$(printf '%s\n' "$CD" | sed -n "s/^$2: *//p"); if [ -n "$v" ] && [ "$v" -gt "$3" ]; then echo "$1 = $v" >> "$D/postgresql.conf"; else echo "$1 = $3" >> "$D/postgresql.conf"; fi; }
`)
	for _, m := range postgres.ControlMinimums {
		fmt.Fprintf(&b, "atleast %s '%s' %d\n", m.Setting, m.ControlKey, m.Min)
	}
	b.WriteString("echo \"firedrill: $D prepared for recovery\"\n")
	return b.String()
}

// probeScript tries a TCP connection to each target (bash's /dev/tcp, 3 s each) and writes one
// line per target to the termination message. It always exits 0: what it found is the result.
const probeScript = `out=/dev/termination-log
: > "$out"
targets=$(cat ` + FilesMount + `/probe-targets)
api="${KUBERNETES_SERVICE_HOST:-kubernetes.default.svc}:${KUBERNETES_SERVICE_PORT:-443}"
for t in $targets $api; do
  h=${t%:*}; p=${t##*:}
  if timeout 3 bash -c "exec 3<>/dev/tcp/$h/$p" 2>/tmp/probe.err; then
    echo "$t open connected" >> "$out"
  else
    echo "$t closed $(head -c 120 /tmp/probe.err | tr '\n' ' ')" >> "$out"
  fi
done
cat "$out"
`

func (p podSpec) securityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: new(false),
		ReadOnlyRootFilesystem:   new(true),
		RunAsNonRoot:             new(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

func (p podSpec) mounts(files bool) []corev1.VolumeMount {
	m := []corev1.VolumeMount{
		{Name: "socket", MountPath: SocketMount},
		{Name: "tmp", MountPath: TmpMount},
	}
	if files {
		m = append(m, corev1.VolumeMount{Name: "firedrill", MountPath: FilesMount, ReadOnly: true})
	}
	for _, v := range p.Volumes {
		switch v.Role {
		case "data":
			m = append(m, corev1.VolumeMount{Name: "data", MountPath: p.dataMount()})
		case "wal":
			m = append(m, corev1.VolumeMount{Name: "wal", MountPath: WALMount})
		}
	}
	return m
}

func (p podSpec) volumes() []corev1.Volume {
	vols := []corev1.Volume{
		{Name: "socket", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "firedrill", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: p.Name}, DefaultMode: new(int32(0o440))}}},
	}
	for _, v := range p.Volumes {
		if v.Role == "data" || v.Role == "wal" {
			vols = append(vols, corev1.Volume{Name: v.Role, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.Claim}}})
		}
	}
	return vols
}

func (p podSpec) env() []corev1.EnvVar {
	if p.Env != nil {
		return p.Env
	}
	return []corev1.EnvVar{{Name: "PGDATA", Value: p.DataDir()}, {Name: "HOME", Value: TmpMount}}
}

// basePod has everything the server pod and the exec pods share: no ServiceAccount token, no
// service links, the source's user and group, RuntimeDefault seccomp, never restarted.
func (p podSpec) basePod(name, role string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace, Labels: p.labels(role)},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  new(false),
			EnableServiceLinks:            new(false),
			TerminationGracePeriodSeconds: new(int64(30)),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser: &p.RunAsUser, RunAsGroup: &p.FSGroup, FSGroup: &p.FSGroup, RunAsNonRoot: new(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Volumes: p.volumes(),
		},
	}
}

// serverPod is the throwaway: prepare the copy, probe production's endpoints, run postgres.
func (p podSpec) serverPod() *corev1.Pod {
	pod := p.basePod(p.Name, RoleThrowaway)
	res := corev1.ResourceRequirements{Requests: p.Requests, Limits: p.Limits}
	small := smallResources()
	pod.Spec.InitContainers = []corev1.Container{
		{Name: PrepareContainer, Image: p.Image, Command: []string{"sh", "-c", p.prepareScript()}, Env: p.env(),
			VolumeMounts: p.mounts(true), SecurityContext: p.securityContext(), Resources: small,
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError},
		p.probeContainer(),
	}
	pod.Spec.Containers = []corev1.Container{{
		Name: ServerContainer, Image: p.Image, Command: []string{"postgres", "-D", p.DataDir()}, Env: p.env(),
		Ports:        []corev1.ContainerPort{{Name: "postgres", ContainerPort: int32(p.Port), Protocol: corev1.ProtocolTCP}},
		VolumeMounts: p.mounts(false), SecurityContext: p.securityContext(), Resources: res,
		// The last log lines reach the pod's status when the server fails: readable without
		// access to the kubelet's logs.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}}
	return pod
}

// smallResources are what the init containers need.
func smallResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}}
}

// probeContainer tries production's endpoints from the pod's network before the server starts
// (the isolation finding).
func (p podSpec) probeContainer() corev1.Container {
	return corev1.Container{Name: ProbeContainer, Image: p.Image, Command: []string{"bash", "-c", probeScript}, Env: p.env(),
		VolumeMounts: p.mounts(true), SecurityContext: p.securityContext(), Resources: smallResources()}
}

// engineConfigMap holds what an engine's pod reads from firedrill: the probe's targets and
// the engine's files (drill.LaunchSpec.Files, which hold no secret).
func (p podSpec) engineConfigMap(files map[string]string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.labels(RoleThrowaway)},
		Data:       map[string]string{"probe.sh": probeScript, "probe-targets": strings.Join(p.ProbeTargets, "\n") + "\n"},
	}
	for k, v := range files {
		cm.Data[k] = v
	}
	return cm
}

// enginePod is an engine's throwaway (redis-server, mariadbd): the isolation probe, then the
// server's argv (run by name from the image's PATH) on the data volume at Mount. It has the
// PostgreSQL pod's isolation: no token, no capabilities, a read-only root, the NetworkPolicy.
func (p podSpec) enginePod(argv []string, files bool) *corev1.Pod {
	pod := p.basePod(p.Name, RoleThrowaway)
	pod.Spec.InitContainers = []corev1.Container{p.probeContainer()}
	pod.Spec.Containers = []corev1.Container{{
		Name: p.serverContainer(), Image: p.Image, Command: argv, Env: p.env(),
		Ports:        []corev1.ContainerPort{{Name: "server", ContainerPort: int32(p.Port), Protocol: corev1.ProtocolTCP}},
		VolumeMounts: p.mounts(files), SecurityContext: p.securityContext(),
		Resources:                corev1.ResourceRequirements{Requests: p.Requests, Limits: p.Limits},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}}
	return pod
}

// execPod runs one of the engine's tools on the stopped copy; its output is the termination
// message (the tools firedrill runs print a few lines).
func (p podSpec) execPod(name string, argv []string) *corev1.Pod {
	pod := p.basePod(name, RoleExec)
	// The tool reads no file of firedrill's: the ConfigMap (which may not exist yet, before
	// an engine's server) is not a volume of its pod.
	pod.Spec.Volumes = slices.DeleteFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.ConfigMap != nil })
	pod.Spec.Containers = []corev1.Container{{
		Name: "tool", Image: p.Image, Env: p.env(),
		Command:      append([]string{"sh", "-c", `"$@" > /dev/termination-log 2>&1; rc=$?; cat /dev/termination-log; exit $rc`, "firedrill-exec"}, argv...),
		VolumeMounts: p.mounts(false), SecurityContext: p.securityContext(),
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits: p.Limits},
	}}
	return pod
}

// networkPolicy denies the throwaway all egress and admits ingress only from the runner.
func (p podSpec) networkPolicy() *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.labels(RoleThrowaway)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{volumesnapshot.LabelDrillID: p.DrillID}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress:      []networkingv1.NetworkPolicyEgressRule{},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{},
		},
	}
	port := intstr.FromInt32(int32(p.Port))
	tcp := corev1.ProtocolTCP
	rule := networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}}}
	if len(p.RunnerLabels) > 0 {
		rule.From = append(rule.From, networkingv1.NetworkPolicyPeer{
			PodSelector: &metav1.LabelSelector{MatchLabels: p.RunnerLabels}, NamespaceSelector: &metav1.LabelSelector{}})
	}
	if p.RunnerCIDR != "" {
		rule.From = append(rule.From, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: p.RunnerCIDR}})
	}
	if len(rule.From) > 0 {
		np.Spec.Ingress = append(np.Spec.Ingress, rule)
	}
	return np
}

// parseProbe reads the probe's termination message.
func parseProbe(msg string) []probeLine {
	var out []probeLine
	for _, l := range strings.Split(strings.TrimSpace(msg), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		out = append(out, probeLine{endpoint: f[0], open: f[1] == "open", detail: strings.Join(f[2:], " ")})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].open && !out[j].open })
	return out
}

type probeLine struct {
	endpoint string
	open     bool
	detail   string
}

func portString(p int) string { return strconv.Itoa(p) }
