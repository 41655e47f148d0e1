package policy

import (
	"strings"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"", 0, false}, {"0", 0, false}, {"1048576", 1 << 20, false}, {"512MiB", 512 << 20, false},
		{"2GiB", 2 << 30, false}, {"1G", 1 << 30, false}, {"1gb", 1 << 30, false}, {"64k", 64 << 10, false},
		{"lots", 0, true}, {"2XB", 0, true}, {"1.5G", 0, true}, {"-1", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBytes(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("ParseBytes(%q) = %d, %v", tt.in, got, err)
			}
		})
	}
}

func TestValidateDocker(t *testing.T) {
	neg := -1.0
	tests := []struct {
		name string
		d    DockerRuntime
		keys []string
	}{
		{"defaults", DockerRuntime{Memory: DefaultDockerMemory}, nil},
		{"bad memory", DockerRuntime{Memory: "lots"}, []string{"t.memory"}},
		{"negative cpus and uid", DockerRuntime{CPUs: &neg, UID: -2}, []string{"t.cpus", "t.uid"}},
		{"image with a space", DockerRuntime{Image: "postgres 15"}, []string{"t.image"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			validateDocker("t", tt.d, func(key, format string, a ...any) { got = append(got, key) })
			if len(got) != len(tt.keys) {
				t.Fatalf("problems at %v, want %v", got, tt.keys)
			}
			for i := range got {
				if got[i] != tt.keys[i] {
					t.Errorf("problems at %v, want %v", got, tt.keys)
				}
			}
		})
	}
}

// kubernetesDefaults is restore.kubernetes with every default applied.
func kubernetesDefaults() KubernetesRuntime {
	var k KubernetesRuntime
	applyKubernetesDefaults(&k)
	return k
}

func TestValidateKubernetes(t *testing.T) {
	neg := int64(-1)
	with := func(f func(k *KubernetesRuntime)) KubernetesRuntime {
		k := kubernetesDefaults()
		f(&k)
		return k
	}
	tests := []struct {
		name string
		k    KubernetesRuntime
		keys []string
	}{
		{"defaults", kubernetesDefaults(), nil},
		{"everything set", with(func(k *KubernetesRuntime) {
			k.Namespace, k.SnapshotNamespace, k.StorageClass, k.SourcePVC = "drills", "db", "fast-ssd", "pg-1"
			k.SnapshotSelector, k.SubPath, k.Image = "cnpg.io/cluster=pg,role in (primary)", "pgdata", "ghcr.io/cloudnative-pg/postgresql:16"
			k.Connect, k.Port = KubernetesConnectPortForward, 5433
			k.Resources.Limits = map[string]string{"cpu": "2", "memory": "4Gi", "ephemeral-storage": "1Gi"}
			k.ProbeTargets = []string{"pg-rw.db.svc:5432", "[fd00::1]:443"}
		}), nil},
		{"no resources at all", with(func(k *KubernetesRuntime) {
			k.Resources = KubernetesResources{Requests: map[string]string{}, Limits: map[string]string{}}
		}), nil},
		{"namespace not a DNS-1123 label", with(func(k *KubernetesRuntime) { k.Namespace = "Scratch_NS" }), []string{"t.namespace"}},
		{"namespace with a dot", with(func(k *KubernetesRuntime) { k.Namespace = "a.b" }), []string{"t.namespace"}},
		{"bad snapshot namespace", with(func(k *KubernetesRuntime) { k.SnapshotNamespace = "DB" }), []string{"t.snapshotNamespace"}},
		{"bad storage class and source PVC", with(func(k *KubernetesRuntime) { k.StorageClass, k.SourcePVC = "Fast SSD", "pvc/1" }), []string{"t.storageClass", "t.sourcePVC"}},
		{"selector does not parse", with(func(k *KubernetesRuntime) { k.SnapshotSelector = "app in (a" }), []string{"t.snapshotSelector"}},
		{"connect", with(func(k *KubernetesRuntime) { k.Connect = "nodePort" }), []string{"t.connect"}},
		{"port zero", with(func(k *KubernetesRuntime) { k.Port = 0 }), []string{"t.port"}},
		{"port too high", with(func(k *KubernetesRuntime) { k.Port = 65536 }), []string{"t.port"}},
		{"negative runAsUser and fsGroup", with(func(k *KubernetesRuntime) { k.RunAsUser, k.FSGroup = &neg, &neg }), []string{"t.runAsUser", "t.fsGroup"}},
		{"root is allowed", with(func(k *KubernetesRuntime) { k.RunAsUser = new(int64) }), nil},
		{"image with a space", with(func(k *KubernetesRuntime) { k.Image = "postgres 16" }), []string{"t.image"}},
		{"absolute subPath", with(func(k *KubernetesRuntime) { k.SubPath = "/pgdata" }), []string{"t.subPath"}},
		{"subPath out of the volume", with(func(k *KubernetesRuntime) { k.SubPath = "a/../../b" }), []string{"t.subPath"}},
		{"quantity does not parse", with(func(k *KubernetesRuntime) { k.Resources.Requests["memory"] = "lots" }), []string{"t.resources.requests.memory"}},
		{"docker-style size is not a quantity", with(func(k *KubernetesRuntime) { k.Resources.Limits["memory"] = "2GiB" }), []string{"t.resources.limits.memory"}},
		{"unknown resource", with(func(k *KubernetesRuntime) { k.Resources.Limits["nvidia.com/gpu"] = "1" }), []string{"t.resources.limits.nvidia.com/gpu"}},
		{"probe target without a port", with(func(k *KubernetesRuntime) { k.ProbeTargets = []string{"ok:1", "pg-rw.db.svc"} }), []string{"t.probeTargets[1]"}},
		{"probe target without a host", with(func(k *KubernetesRuntime) { k.ProbeTargets = []string{":5432"} }), []string{"t.probeTargets[0]"}},
		{"zero timeouts", with(func(k *KubernetesRuntime) { k.Timeouts.Bind, k.Timeouts.Ready = Duration{}, Duration{} }), []string{"t.timeouts.bind", "t.timeouts.ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			validateKubernetes("t", tt.k, func(key, format string, a ...any) { got = append(got, key) })
			if strings.Join(got, " ") != strings.Join(tt.keys, " ") {
				t.Errorf("problems at %v, want %v", got, tt.keys)
			}
		})
	}
}

const kubernetesTarget = `targets:
  - name: orders
    connection: {dsn: "host=/run/pg"}
    snapshot:
      driver: %DRIVER%
      csi: {namespace: db, pvc: data, className: fast}
      local: {dataDir: /var/lib/pg, repository: /backups/orders}
    restore:
      runtime: kubernetes
%RESTORE%`

func kubernetesDoc(driver, restore string) []byte {
	return []byte(strings.NewReplacer("%DRIVER%", driver, "%RESTORE%", restore).Replace(kubernetesTarget))
}

func TestParseKubernetesDefaults(t *testing.T) {
	cfg, err := Parse("/etc/firedrill.yaml", kubernetesDoc("csi", ""))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	k := cfg.Targets[0].Restore.Kubernetes
	tests := []struct {
		name      string
		got, want any
	}{
		{"namespace", k.Namespace, DefaultScratchNamespace},
		{"port", k.Port, DefaultKubernetesPort},
		{"runAsUser", *k.RunAsUser, int64(999)},
		{"fsGroup", *k.FSGroup, int64(999)},
		{"connect", k.Connect, KubernetesConnectAuto},
		{"resources.requests.cpu", k.Resources.Requests["cpu"], "250m"},
		{"resources.requests.memory", k.Resources.Requests["memory"], "512Mi"},
		{"resources.limits.memory", k.Resources.Limits["memory"], "2Gi"},
		{"resources.limits count", len(k.Resources.Limits), 1},
		{"timeouts.bind", k.Timeouts.Bind.Duration, 10 * time.Minute},
		{"timeouts.schedule", k.Timeouts.Schedule.Duration, 5 * time.Minute},
		{"timeouts.start", k.Timeouts.Start.Duration, 10 * time.Minute},
		{"timeouts.ready", k.Timeouts.Ready.Duration, 30 * time.Minute},
		{"kubeconfig", k.Kubeconfig, ""},
		{"snapshotNamespace", k.SnapshotNamespace, ""},
		{"sourcePVC", k.SourcePVC, ""},
		{"image", k.Image, ""},
		{"requireIsolation", k.RequireIsolation, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v (%T), want %v (%T)", tt.got, tt.got, tt.want, tt.want)
			}
		})
	}
}

func TestParseKubernetesKeepsExplicitValues(t *testing.T) {
	cfg, err := Parse("/etc/firedrill.yaml", kubernetesDoc("csi", `      kubernetes:
        kubeconfig: /etc/firedrill/kubeconfig
        namespace: drills
        storageClass: fast-ssd
        snapshotNamespace: db
        snapshotSelector: cnpg.io/cluster=pg
        sourcePVC: pg-1
        image: ghcr.io/cloudnative-pg/postgresql:16
        runAsUser: 26
        subPath: pgdata
        port: 5433
        connect: podIP
        resources:
          requests: {cpu: "1"}
          limits: {}
        requireIsolation: true
        probeTargets: ["pg-rw.db.svc:5432"]
        timeouts: {bind: 1m, schedule: 2m, start: 3m, ready: 4m}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	k := cfg.Targets[0].Restore.Kubernetes
	tests := []struct {
		name      string
		got, want any
	}{
		{"kubeconfig", k.Kubeconfig, "/etc/firedrill/kubeconfig"},
		{"namespace", k.Namespace, "drills"},
		{"storageClass", k.StorageClass, "fast-ssd"},
		{"snapshotNamespace", k.SnapshotNamespace, "db"},
		{"snapshotSelector", k.SnapshotSelector, "cnpg.io/cluster=pg"},
		{"sourcePVC", k.SourcePVC, "pg-1"},
		{"image", k.Image, "ghcr.io/cloudnative-pg/postgresql:16"},
		{"runAsUser", *k.RunAsUser, int64(26)},
		{"fsGroup follows runAsUser", *k.FSGroup, int64(26)},
		{"subPath", k.SubPath, "pgdata"},
		{"port", k.Port, 5433},
		{"connect", k.Connect, KubernetesConnectPodIP},
		{"requests replaced whole", len(k.Resources.Requests), 1},
		{"requests.cpu", k.Resources.Requests["cpu"], "1"},
		{"limits: {} is none", k.Resources.Limits != nil && len(k.Resources.Limits) == 0, true},
		{"requireIsolation", k.RequireIsolation, true},
		{"probeTargets", strings.Join(k.ProbeTargets, ","), "pg-rw.db.svc:5432"},
		{"timeouts.bind", k.Timeouts.Bind.Duration, time.Minute},
		{"timeouts.schedule", k.Timeouts.Schedule.Duration, 2 * time.Minute},
		{"timeouts.start", k.Timeouts.Start.Duration, 3 * time.Minute},
		{"timeouts.ready", k.Timeouts.Ready.Duration, 4 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v (%T), want %v (%T)", tt.got, tt.got, tt.want, tt.want)
			}
		})
	}
}

func TestParseKubernetesErrors(t *testing.T) {
	tests := []struct {
		name, driver, restore, key, msg string
	}{
		{"needs driver csi", "local", "", "targets[0].restore.runtime",
			"restore.runtime kubernetes drills CSI snapshots: set snapshot.driver: csi (or restore.runtime: local)"},
		{"explicit zero timeout", "csi", "      kubernetes: {timeouts: {start: 0s}}\n", "targets[0].restore.kubernetes.timeouts.start", "greater than zero"},
		{"unknown key", "csi", "      kubernetes: {namspace: x}\n", "targets[0].restore.kubernetes.namspace", `did you mean "namespace"?`},
		{"bad namespace", "csi", "      kubernetes: {namespace: Scratch}\n", "targets[0].restore.kubernetes.namespace", "not a valid namespace name"},
		{"bad quantity", "csi", "      kubernetes: {resources: {limits: {memory: 2GiB}}}\n", "targets[0].restore.kubernetes.resources.limits.memory", "not a quantity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("/etc/firedrill.yaml", kubernetesDoc(tt.driver, tt.restore))
			es, ok := err.(Errors)
			if !ok {
				t.Fatalf("err = %v", err)
			}
			for _, e := range es {
				if e.Key == tt.key && strings.Contains(e.Msg, tt.msg) {
					if e.Line == 0 {
						t.Errorf("no line in %v", e)
					}
					return
				}
			}
			t.Errorf("no error at %s containing %q in:\n%v", tt.key, tt.msg, err)
		})
	}
}
