package kubernetes

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/source/volumesnapshot"
)

const (
	scratchNS = "firedrill-scratch"
	drillID   = "d1"
	podName   = "firedrill-d1"
	label     = "START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\n"
)

var t0 = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)

func options() Options {
	return Options{
		Namespace: scratchNS, Image: "registry.example/postgres:16.4", RunAsUser: 26, FSGroup: 26, SubPath: "pgdata", Port: 5432,
		Connect:      ConnectPodIP,
		Requests:     corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		Limits:       corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
		ProbeTargets: []string{"orders-rw.prod.svc:5432"},
		RunnerLabels: map[string]string{"app.kubernetes.io/name": "firedrill"}, RunnerCIDR: "10.0.0.7/32",
		Schedule: 2 * time.Second, Start: 2 * time.Second, Ready: 300 * time.Millisecond,
		Now: func() time.Time { return t0 },
	}
}

func startSpec() drill.StartSpec {
	return drill.StartSpec{
		DrillID: drillID, Target: "orders", Major: "16", EngineVersion: "16.4", Superuser: "postgres",
		Files: map[string][]byte{postgres.BackupLabelFile: []byte(label)},
		Copy: &drill.Copy{Volumes: []drill.Volume{
			{Role: "data", Namespace: scratchNS, Claim: "firedrill-d1-data", Snapshot: "firedrill-d1-data"},
			{Role: "wal", Namespace: scratchNS, Claim: "firedrill-d1-wal", Snapshot: "firedrill-d1-wal"},
		}},
	}
}

func start(t *testing.T, core *kubefake.Clientset, o Options, s drill.StartSpec) *Pod {
	t.Helper()
	th, err := New(Clients{Core: core, InCluster: true}, o).Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return th.(*Pod)
}

func owned(t *testing.T, kind string, m metav1.ObjectMeta) {
	t.Helper()
	if m.Labels["app.kubernetes.io/managed-by"] != "firedrill" || m.Labels["firedrill.io/drill-id"] != drillID || m.Labels["firedrill.io/target"] != "orders" {
		t.Errorf("%s %s: labels %v lack firedrill's ownership labels", kind, m.Name, m.Labels)
	}
}

func mounted(c corev1.Container, name, path string) bool {
	return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == name && m.MountPath == path && m.SubPath == "" })
}

// expect is one property of an object, named.
type expect struct {
	name string
	ok   bool
}

func TestStartPod(t *testing.T) {
	core := kubefake.NewSimpleClientset()
	start(t, core, options(), startSpec())
	pod, err := core.CoreV1().Pods(scratchNS).Get(context.Background(), podName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned(t, "Pod", pod.ObjectMeta)
	spec := pod.Spec
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	server := spec.Containers[0]
	tests := []expect{
		{"automountServiceAccountToken false", spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken},
		{"enableServiceLinks false", spec.EnableServiceLinks != nil && !*spec.EnableServiceLinks},
		{"restartPolicy Never", spec.RestartPolicy == corev1.RestartPolicyNever},
		{"no ServiceAccount named", spec.ServiceAccountName == ""},
		{"runAsNonRoot", spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot},
		{"runAsUser from options", spec.SecurityContext.RunAsUser != nil && *spec.SecurityContext.RunAsUser == 26},
		{"fsGroup from options", spec.SecurityContext.FSGroup != nil && *spec.SecurityContext.FSGroup == 26},
		{"seccomp RuntimeDefault", spec.SecurityContext.SeccompProfile != nil && spec.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"init containers prepare then isolation-probe", len(spec.InitContainers) == 2 && spec.InitContainers[0].Name == PrepareContainer && spec.InitContainers[1].Name == ProbeContainer},
		{"one server container", len(spec.Containers) == 1 && server.Name == ServerContainer},
		{"image from options", server.Image == "registry.example/postgres:16.4" && spec.InitContainers[0].Image == server.Image},
		{"requests from options", server.Resources.Requests.Cpu().Equal(resource.MustParse("500m")) && server.Resources.Requests.Memory().Equal(resource.MustParse("1Gi"))},
		{"limits from options", server.Resources.Limits.Memory().Equal(resource.MustParse("2Gi"))},
		{"server port", len(server.Ports) == 1 && server.Ports[0].ContainerPort == 5432},
		{"server runs postgres -D on the subPath", slices.Equal(server.Command, []string{"postgres", "-D", DataMount + "/pgdata"})},
		{"server's last log lines in its termination message", server.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError},
		{"no host network, no host PID", !spec.HostNetwork && !spec.HostPID},
	}
	for _, c := range all {
		sc := c.SecurityContext
		tests = append(tests,
			expect{c.Name + ": capabilities drop ALL", sc != nil && sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0},
			expect{c.Name + ": readOnlyRootFilesystem", sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem},
			expect{c.Name + ": no privilege escalation", sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation && (sc.Privileged == nil || !*sc.Privileged)},
			expect{c.Name + ": PGDATA with subPath", slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "PGDATA" && e.Value == DataMount+"/pgdata" })},
			expect{c.Name + ": data PVC mounted", mounted(c, "data", DataMount)},
			expect{c.Name + ": WAL PVC mounted", mounted(c, "wal", WALMount)},
		)
	}
	claims := map[string]string{}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.Name] = v.PersistentVolumeClaim.ClaimName
		}
		if v.ConfigMap != nil {
			claims[v.Name] = "configmap " + v.ConfigMap.Name
		}
	}
	tests = append(tests,
		expect{"data volume is the scratch PVC", claims["data"] == "firedrill-d1-data"},
		expect{"wal volume is the scratch PVC", claims["wal"] == "firedrill-d1-wal"},
		expect{"the ConfigMap mounted", claims["firedrill"] == "configmap "+podName},
		expect{"the ConfigMap not mounted in the server", !slices.ContainsFunc(server.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "firedrill" })},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Errorf("pod spec: not %s\n%+v", tt.name, spec)
			}
		})
	}
}

func TestStartDefaultImageAndKeep(t *testing.T) {
	core := kubefake.NewSimpleClientset()
	o := options()
	o.Image = ""
	s := startSpec()
	s.Keep = true
	start(t, core, o, s)
	pod, err := core.CoreV1().Pods(scratchNS).Get(context.Background(), podName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.Containers[0].Image != "postgres:16" {
		t.Errorf("image %q, want postgres:<major>", pod.Spec.Containers[0].Image)
	}
	if pod.Labels[LabelKept] != "true" {
		t.Errorf("a --keep drill's pod lacks %s: %v", LabelKept, pod.Labels)
	}
}

func TestStartConfigMap(t *testing.T) {
	core := kubefake.NewSimpleClientset()
	start(t, core, options(), startSpec())
	cm, err := core.CoreV1().ConfigMaps(scratchNS).Get(context.Background(), podName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned(t, "ConfigMap", cm.ObjectMeta)
	if string(cm.BinaryData[postgres.BackupLabelFile]) != label {
		t.Errorf("backup_label %q, want %q", cm.BinaryData[postgres.BackupLabelFile], label)
	}
	if _, ok := cm.BinaryData[postgres.TablespaceMapFile]; ok {
		t.Error("an empty tablespace_map was written")
	}
	conf := cm.Data["postgresql.conf"]
	for _, want := range []string{"archive_mode = off", "archive_command = ''", "restore_command = ''", "primary_conninfo = ''",
		"max_wal_senders = 0", "max_replication_slots = 0", "max_logical_replication_workers = 0", "shared_preload_libraries = ''",
		"listen_addresses = '*'", "port = 5432", "unix_socket_directories = '" + SocketMount + "'"} {
		if !strings.Contains(conf, want+"\n") {
			t.Errorf("postgresql.conf lacks %q:\n%s", want, conf)
		}
	}
	hba := cm.Data["pg_hba.conf"]
	for _, want := range []string{"local all all trust", "host all all 127.0.0.1/32 trust", "host all all 10.0.0.7/32 trust"} {
		if !strings.Contains(hba, want+"\n") {
			t.Errorf("pg_hba.conf lacks %q:\n%s", want, hba)
		}
	}
	if strings.Contains(hba, "0.0.0.0/0") || strings.Contains(hba, "::/0") {
		t.Errorf("pg_hba.conf admits anyone:\n%s", hba)
	}
	if cm.Data["probe-targets"] != "orders-rw.prod.svc:5432\n" {
		t.Errorf("probe-targets %q", cm.Data["probe-targets"])
	}
	prep := cm.Data["prepare.sh"]
	for _, want := range []string{"backup_label tablespace_map", "rm -f \"$D/standby.signal\" \"$D/recovery.signal\"", "postgresql.auto.conf",
		"atleast max_prepared_transactions 'max_prepared_xacts setting' 0", "ln -s \"$W\" \"$D/pg_wal\""} {
		if !strings.Contains(prep, want) {
			t.Errorf("prepare.sh lacks %q", want)
		}
	}
}

func TestStartNetworkPolicy(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		cidr   string
		peers  int
	}{
		{"runner by labels and address", map[string]string{"app.kubernetes.io/name": "firedrill"}, "10.0.0.7/32", 2},
		{"runner by labels only", map[string]string{"app.kubernetes.io/name": "firedrill"}, "", 1},
		{"port-forward only: no ingress rule at all", nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := kubefake.NewSimpleClientset()
			o := options()
			o.RunnerLabels, o.RunnerCIDR = tt.labels, tt.cidr
			start(t, core, o, startSpec())
			np, err := core.NetworkingV1().NetworkPolicies(scratchNS).Get(context.Background(), podName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			owned(t, "NetworkPolicy", np.ObjectMeta)
			if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
				t.Errorf("policyTypes %v, want Ingress and Egress", np.Spec.PolicyTypes)
			}
			if len(np.Spec.Egress) != 0 {
				t.Errorf("egress rules %+v, want none (deny all)", np.Spec.Egress)
			}
			if np.Spec.PodSelector.MatchLabels[volumesnapshot.LabelDrillID] != drillID {
				t.Errorf("podSelector %+v does not select the drill's pods", np.Spec.PodSelector)
			}
			pod, err := core.CoreV1().Pods(scratchNS).Get(context.Background(), podName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range np.Spec.PodSelector.MatchLabels {
				if pod.Labels[k] != v {
					t.Errorf("the policy's podSelector %v does not select the pod %v", np.Spec.PodSelector.MatchLabels, pod.Labels)
				}
			}
			if tt.peers == 0 {
				if len(np.Spec.Ingress) != 0 {
					t.Errorf("ingress %+v, want none", np.Spec.Ingress)
				}
				return
			}
			if len(np.Spec.Ingress) != 1 {
				t.Fatalf("ingress %+v, want one rule", np.Spec.Ingress)
			}
			rule := np.Spec.Ingress[0]
			if len(rule.Ports) != 1 || rule.Ports[0].Port.IntValue() != 5432 || *rule.Ports[0].Protocol != corev1.ProtocolTCP {
				t.Errorf("ingress ports %+v, want TCP 5432 only", rule.Ports)
			}
			if len(rule.From) != tt.peers {
				t.Fatalf("ingress from %+v, want %d peers", rule.From, tt.peers)
			}
			if p := rule.From[0]; p.PodSelector == nil || p.PodSelector.MatchLabels["app.kubernetes.io/name"] != "firedrill" {
				t.Errorf("first peer %+v, want the runner's labels", p)
			}
			if tt.cidr != "" {
				if p := rule.From[1]; p.IPBlock == nil || p.IPBlock.CIDR != tt.cidr || len(p.IPBlock.Except) != 0 {
					t.Errorf("second peer %+v, want %s", p, tt.cidr)
				}
			}
		})
	}
}

var (
	grPods = schema.GroupResource{Resource: "pods"}
	grCMs  = schema.GroupResource{Resource: "configmaps"}
	grNPs  = schema.GroupResource{Group: "networking.k8s.io", Resource: "networkpolicies"}
)

// kinds lists what of the drill is in the scratch namespace.
func kinds(t *testing.T, core *kubefake.Clientset) []string {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: "firedrill.io/drill-id=" + drillID}
	var out []string
	pods, err := core.CoreV1().Pods(scratchNS).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pods.Items {
		out = append(out, "Pod "+o.Name)
	}
	cms, err := core.CoreV1().ConfigMaps(scratchNS).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cms.Items {
		out = append(out, "ConfigMap "+o.Name)
	}
	nps, err := core.NetworkingV1().NetworkPolicies(scratchNS).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range nps.Items {
		out = append(out, "NetworkPolicy "+o.Name)
	}
	return out
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		name string
		res  string
		err  error
		want string
		is   func(error) bool
	}{
		{"ConfigMap forbidden", "configmaps", apierrors.NewForbidden(grCMs, podName, errors.New("RBAC")), "ConfigMap " + scratchNS + "/" + podName, apierrors.IsForbidden},
		{"ConfigMap already exists", "configmaps", apierrors.NewAlreadyExists(grCMs, podName), "ConfigMap " + scratchNS + "/" + podName, apierrors.IsAlreadyExists},
		{"NetworkPolicy forbidden: the ConfigMap removed", "networkpolicies", apierrors.NewForbidden(grNPs, podName, errors.New("RBAC")), "NetworkPolicy " + scratchNS + "/" + podName, apierrors.IsForbidden},
		{"NetworkPolicy server timeout", "networkpolicies", apierrors.NewServerTimeout(grNPs, "create", 1), "NetworkPolicy " + scratchNS + "/" + podName, apierrors.IsServerTimeout},
		{"pod forbidden (PodSecurity): ConfigMap and NetworkPolicy removed", "pods", apierrors.NewForbidden(grPods, podName, errors.New("violates PodSecurity")), "pod " + scratchNS + "/" + podName, apierrors.IsForbidden},
		{"pod conflict", "pods", apierrors.NewConflict(grPods, podName, errors.New("changed")), "pod " + scratchNS + "/" + podName, apierrors.IsConflict},
		{"pod already exists", "pods", apierrors.NewAlreadyExists(grPods, podName), "pod " + scratchNS + "/" + podName, apierrors.IsAlreadyExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := kubefake.NewSimpleClientset()
			core.PrependReactor("create", tt.res, func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tt.err })
			_, err := New(Clients{Core: core}, options()).Start(context.Background(), startSpec())
			if err == nil {
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), "phase start") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name phase start and %q", err, tt.want)
			}
			if !tt.is(err) {
				t.Errorf("error %v does not wrap the API error", err)
			}
			if left := kinds(t, core); len(left) > 0 {
				t.Errorf("a failed Start left %v", left)
			}
		})
	}
}

func TestStartNeedsScratchPVCs(t *testing.T) {
	core := kubefake.NewSimpleClientset()
	s := startSpec()
	s.Copy, s.DataDir = &drill.Copy{DataDir: "/scratch/clone"}, "/scratch/clone"
	_, err := New(Clients{Core: core}, options()).Start(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "scratch PVCs") {
		t.Fatalf("error %v", err)
	}
	if left := kinds(t, core); len(left) > 0 {
		t.Errorf("left %v", left)
	}
}

func TestParseProbe(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want []probeLine
	}{
		{"empty", "", nil},
		{"all closed", "orders-rw.prod.svc:5432 closed bash: connect: Connection timed out \n10.96.0.1:443 closed timeout\n",
			[]probeLine{{"orders-rw.prod.svc:5432", false, "bash: connect: Connection timed out"}, {"10.96.0.1:443", false, "timeout"}}},
		{"open ones first", "orders-rw.prod.svc:5432 closed refused\n10.96.0.1:443 open connected\n",
			[]probeLine{{"10.96.0.1:443", true, "connected"}, {"orders-rw.prod.svc:5432", false, "refused"}}},
		{"noise and blank lines skipped", "\n  \ngarbage\n10.96.0.1:443 open connected\n",
			[]probeLine{{"10.96.0.1:443", true, "connected"}}},
		{"no detail", "h:1 closed", []probeLine{{"h:1", false, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseProbe(tt.msg); !slices.Equal(got, tt.want) {
				t.Errorf("parseProbe(%q) = %+v, want %+v", tt.msg, got, tt.want)
			}
		})
	}
}

// controldata is real pg_controldata output (PostgreSQL 16), with the state line replaced.
const controldata = `pg_control version number:            1300
Catalog version number:               202307071
Database system identifier:           7311234567890123456
Database cluster state:               %s
pg_control last modified:             Mon 30 Nov 2026 06:00:00 AM UTC
Latest checkpoint location:           0/5000060
Latest checkpoint's REDO location:    0/5000028
Latest checkpoint's TimeLineID:       1
wal_level setting:                    replica
max_connections setting:              100
max_prepared_xacts setting:           0
max_locks_per_xact setting:           64
Data page checksum version:           1
`

func TestCleanlyShutDown(t *testing.T) {
	tests := []struct {
		state string
		want  bool
	}{
		{"shut down", true},
		{"shut down in recovery", true},
		{"in production", false},
		{"in crash recovery", false},
		{"in archive recovery", false},
		{"shutting down", false},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			if got := cleanlyShutDown(strings.Replace(controldata, "%s", tt.state, 1)); got != tt.want {
				t.Errorf("cleanlyShutDown(%q) = %v, want %v", tt.state, got, tt.want)
			}
		})
	}
	t.Run("no state line", func(t *testing.T) {
		if cleanlyShutDown("pg_controldata: error: could not open file \"global/pg_control\"") {
			t.Error("an error message read as a clean shutdown")
		}
	})
}
