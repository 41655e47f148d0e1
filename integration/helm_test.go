package integration

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The Helm chart (deploy/helm/firedrill), with the helm library itself: lint, render with
// several value sets (as `helm template` does), and check what it renders against the shipped
// RBAC, the alert rules and the pod security every firedrill pod must have. Installing it on a
// cluster is issue 13's e2e scenario, not this test.

var chartDir = filepath.Join("..", "deploy", "helm", "firedrill")

const (
	helmRelease   = "ops-drills" // no "firedrill" in it: object names are <release>-firedrill
	helmNamespace = "backup-ops"
)

// helmObject is one rendered document: its kind, name and namespace, and the YAML itself.
type helmObject struct {
	Kind      string
	Name      string
	Namespace string
	Doc       []byte
}

func helmRender(t *testing.T, vals map[string]any) ([]helmObject, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	install := action.NewInstall(&action.Configuration{Log: t.Logf})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = helmRelease
	install.Namespace = helmNamespace
	install.DisableHooks = true
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return nil, err
	}
	var objs []helmObject
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(rel.Manifest)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading the rendered manifest: %v", err)
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("rendered document: %v\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue // an empty document (a template whose condition is false)
		}
		objs = append(objs, helmObject{Kind: meta.Kind, Name: meta.Metadata.Name, Namespace: meta.Metadata.Namespace, Doc: doc})
	}
	return objs, nil
}

func mustRender(t *testing.T, vals map[string]any) []helmObject {
	t.Helper()
	objs, err := helmRender(t, vals)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	return objs
}

// helmValues parses a values document as `helm -f` would.
func helmValues(t *testing.T, doc string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("values: %v", err)
	}
	if v == nil {
		v = map[string]any{}
	}
	return v
}

// fullValues: serve, two scheduled targets (CSI snapshots restored in Kubernetes), a third
// target only audited, ServiceMonitor, PrometheusRule, every optional RBAC piece, a history PVC.
const fullValues = `
image: {repository: registry.example/firedrill, tag: "1.2.3"}
scratchNamespace: {name: drills-scratch, create: true}
secretEnv:
  ORDERS_DSN: {secretName: orders-db, key: dsn}
  USERS_DSN: {secretName: users-db, key: dsn}
  FIREDRILL_TOKEN: {secretName: firedrill-token, key: token}
config:
  serve: {tokenEnv: FIREDRILL_TOKEN}
  targets:
    - name: orders
      connection: {dsnEnv: ORDERS_DSN}
      snapshot: {driver: csi, csi: {namespace: shop, pvc: orders-data, className: csi-snapclass}}
      restore: {runtime: kubernetes, kubernetes: {namespace: drills-scratch}}
      objectives: {rto: 30m}
    - name: users
      connection: {dsnEnv: USERS_DSN}
      snapshot: {driver: csi, csi: {namespace: accounts, pvc: users-data, className: csi-snapclass}}
      restore: {runtime: kubernetes, kubernetes: {namespace: drills-scratch}}
    - name: audit-only
      connection: {dsnEnv: ORDERS_DSN}
      snapshot: {local: {dataDir: /var/lib/postgresql/15/main, repository: /var/lib/firedrill/snapshots}}
      schedule: "@monthly"
drills:
  orders: {schedule: "45 3 * * *", activeDeadlineSeconds: 3600}
  users: {schedule: "15 4 * * 0", activeDeadlineSeconds: 7200, startingDeadlineSeconds: 600}
serve: {enabled: true}
history: {persistence: {enabled: true, accessModes: [ReadWriteMany]}}
rbac:
  databaseNamespaces: [shop, accounts]
  portForward: true
  snapshot: {enabled: true, groups: true, groupClassDetect: true}
monitoring:
  serviceMonitor: {enabled: true, labels: {release: kps}}
  prometheusRule: {enabled: true, labels: {release: kps}}
`

func TestHelmChartLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals string
	}{
		{"defaults", ""},
		{"serve, two scheduled targets, monitoring", fullValues},
	} {
		t.Run(tc.name, func(t *testing.T) {
			linter := lint.AllWithKubeVersionAndSchemaValidation(chartDir, helmValues(t, tc.vals), helmNamespace, nil, false)
			for _, m := range linter.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}

// A typo in values fails the install (values.schema.json), naming the key; so do values that
// disagree with the config (checked by the chart's templates).
func TestHelmChartRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name, vals string
		want       []string
	}{
		{"typo at the top", "servce: {enabled: true}", []string{"servce"}},
		{"typo in serve", "serve: {enabeld: true}", []string{"enabeld"}},
		{"typo in a drill", `
config: {targets: [{name: orders}]}
drills: {orders: {schedule: "0 3 * * *", activeDeadlineSeconds: 60, startingDeadline: 10}}`, []string{"startingDeadline"}},
		{"typo in a config target", `config: {targets: [{name: orders, shedule: "@daily"}]}`, []string{"shedule"}},
		{"drill without a deadline", `
config: {targets: [{name: orders}]}
drills: {orders: {schedule: "0 3 * * *"}}`, []string{"activeDeadlineSeconds"}},
		{"wrong type", "gc: {enabled: \"yes\"}", []string{"enabled"}},
		{"drill of an unknown target", `
config: {targets: [{name: orders}]}
drills: {order: {schedule: "0 3 * * *", activeDeadlineSeconds: 60}}`, []string{"drills.order", "no target"}},
		{"drilled by serve and by a CronJob", `
serve: {enabled: true}
config: {targets: [{name: orders, schedule: "@daily"}]}
drills: {orders: {schedule: "0 3 * * *", activeDeadlineSeconds: 60}}`, []string{"drills.orders", "twice"}},
		{"DSN variable without a Secret", `
config: {targets: [{name: orders, connection: {dsnEnv: ORDERS_DSN}}]}`, []string{"ORDERS_DSN", "secretEnv"}},
		{"another scratch namespace", `
config: {targets: [{name: orders, restore: {runtime: kubernetes, kubernetes: {namespace: elsewhere}}}]}`, []string{"elsewhere", "scratchNamespace.name"}},
		{"snapshots in a namespace without RBAC", `
config: {targets: [{name: orders, snapshot: {driver: csi, csi: {namespace: shop}}, restore: {runtime: kubernetes}}]}`, []string{"shop", "rbac.databaseNamespaces"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helmRender(t, helmValues(t, tc.vals))
			if err == nil {
				t.Fatal("rendered; want an error")
			}
			t.Logf("helm: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// rbacRules reads the rules of a Role or ClusterRole document.
func rbacRules(t *testing.T, doc []byte) []rbacv1.PolicyRule {
	t.Helper()
	var r struct {
		Rules []rbacv1.PolicyRule `json:"rules"`
	}
	if err := yaml.Unmarshal(doc, &r); err != nil {
		t.Fatal(err)
	}
	return r.Rules
}

// The rendered drill and snapshot RBAC grants exactly what deploy/rbac ships, in the right
// namespaces, bound to the chart's ServiceAccount in the release's namespace.
func TestHelmChartRBACEqualsShipped(t *testing.T) {
	objs := mustRender(t, helmValues(t, fullValues))
	full := helmRelease + "-firedrill"
	shipped := func(file string) []rbacv1.PolicyRule {
		b, err := os.ReadFile(filepath.Join("..", "deploy", "rbac", file))
		if err != nil {
			t.Fatal(err)
		}
		return rbacRules(t, b)
	}
	want := []struct {
		kind, name, file string
		namespaces       []string
	}{
		{"Role", full + "-drill", "drill-kubernetes-role.yaml", []string{"drills-scratch"}},
		{"Role", full + "-drill-diagnostics", "drill-kubernetes-diagnostics-role.yaml", []string{"drills-scratch"}},
		{"Role", full + "-drill-portforward", "drill-kubernetes-portforward-role.yaml", []string{"drills-scratch"}},
		{"Role", full + "-drill-source", "drill-kubernetes-source-role.yaml", []string{"accounts", "shop"}},
		{"ClusterRole", helmNamespace + "-" + full + "-drill", "drill-kubernetes-clusterrole.yaml", []string{""}},
		{"Role", full + "-snapshot", "snapshot-csi-role.yaml", []string{"accounts", "shop"}},
		{"Role", full + "-snapshot-group", "snapshot-group-csi-role.yaml", []string{"accounts", "shop"}},
		{"ClusterRole", helmNamespace + "-" + full + "-snapshot-group-detect", "snapshot-group-csi-clusterrole.yaml", []string{""}},
	}
	roles := 0
	for _, o := range objs {
		if o.Kind == "Role" || o.Kind == "ClusterRole" {
			roles++
		}
	}
	if n := 3 + 2 + 1 + 2 + 2 + 1; roles != n {
		t.Errorf("%d Roles and ClusterRoles rendered, want %d", roles, n)
	}
	for _, w := range want {
		rules := shipped(w.file)
		var found []string
		for _, o := range objs {
			if o.Kind != w.kind || o.Name != w.name {
				continue
			}
			found = append(found, o.Namespace)
			if got := rbacRules(t, o.Doc); !reflect.DeepEqual(got, rules) {
				t.Errorf("%s %s/%s rules:\n%+v\nwant (deploy/rbac/%s):\n%+v", o.Kind, o.Namespace, o.Name, got, w.file, rules)
			}
			// Its binding: same name and namespace, this role, the chart's ServiceAccount.
			bindingKind := strings.Replace(w.kind, "Role", "RoleBinding", 1)
			var b *rbacv1.RoleBinding
			for _, ob := range objs {
				if ob.Kind == bindingKind && ob.Name == o.Name && ob.Namespace == o.Namespace {
					b = &rbacv1.RoleBinding{}
					if err := yaml.UnmarshalStrict(ob.Doc, b); err != nil {
						t.Fatal(err)
					}
				}
			}
			wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: full, Namespace: helmNamespace}}
			if b == nil {
				t.Errorf("no %s for %s %s/%s", bindingKind, w.kind, o.Namespace, o.Name)
			} else if b.RoleRef.Kind != w.kind || b.RoleRef.Name != o.Name || !reflect.DeepEqual(b.Subjects, wantSubjects) {
				t.Errorf("%s %s/%s binds %+v to %+v", bindingKind, o.Namespace, o.Name, b.RoleRef, b.Subjects)
			}
		}
		slices.Sort(found)
		if !slices.Equal(found, w.namespaces) {
			t.Errorf("%s %s rendered in namespaces %q, want %q", w.kind, w.name, found, w.namespaces)
		}
	}

	// With defaults: no database namespaces yet, no snapshot or port-forward RBAC.
	var kinds []string
	for _, o := range mustRender(t, nil) {
		if strings.HasSuffix(o.Kind, "Role") {
			kinds = append(kinds, o.Kind+" "+o.Name)
		}
	}
	wantDefault := []string{"ClusterRole " + helmNamespace + "-" + full + "-drill", "Role " + full + "-drill", "Role " + full + "-drill-diagnostics"}
	slices.Sort(kinds)
	if !slices.Equal(kinds, wantDefault) {
		t.Errorf("default roles %q, want %q", kinds, wantDefault)
	}
}

// podTemplates returns every pod template of the rendered workloads, by object.
func podTemplates(t *testing.T, objs []helmObject) map[string]corev1.PodTemplateSpec {
	t.Helper()
	pods := map[string]corev1.PodTemplateSpec{}
	for _, o := range objs {
		switch o.Kind {
		case "Deployment":
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict(o.Doc, &d); err != nil {
				t.Fatalf("Deployment %s: %v", o.Name, err)
			}
			pods[o.Kind+"/"+o.Name] = d.Spec.Template
		case "CronJob":
			var cj batchv1.CronJob
			if err := yaml.UnmarshalStrict(o.Doc, &cj); err != nil {
				t.Fatalf("CronJob %s: %v", o.Name, err)
			}
			pods[o.Kind+"/"+o.Name] = cj.Spec.JobTemplate.Spec.Template
		case "Pod", "Job", "StatefulSet", "DaemonSet", "ReplicaSet":
			t.Errorf("%s %s: a workload kind this test does not check", o.Kind, o.Name)
		}
	}
	return pods
}

// Every pod runs non-root with a read-only root, no capabilities, RuntimeDefault seccomp,
// the label the throwaways' NetworkPolicies admit, the downward-API environment, and secrets
// only by reference.
func TestHelmChartPodSecurity(t *testing.T) {
	for _, tc := range []struct{ name, vals string }{{"defaults and one target", "config: {targets: [{name: orders}]}"}, {"full", fullValues}} {
		t.Run(tc.name, func(t *testing.T) {
			pods := podTemplates(t, mustRender(t, helmValues(t, tc.vals)))
			if len(pods) == 0 {
				t.Fatal("no workloads rendered")
			}
			for name, p := range pods {
				if p.Labels["app.kubernetes.io/name"] != "firedrill" {
					t.Errorf("%s: pod labels %v lack app.kubernetes.io/name=firedrill", name, p.Labels)
				}
				ps := p.Spec.SecurityContext
				if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 ||
					ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("%s: pod securityContext %+v", name, ps)
				}
				if len(p.Spec.InitContainers) != 0 || len(p.Spec.Containers) == 0 {
					t.Errorf("%s: %d containers, %d init containers", name, len(p.Spec.Containers), len(p.Spec.InitContainers))
				}
				for _, c := range p.Spec.Containers {
					s := c.SecurityContext
					if s == nil || s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem ||
						s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation ||
						s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(s.Capabilities.Add) != 0 ||
						s.RunAsNonRoot == nil || !*s.RunAsNonRoot ||
						s.SeccompProfile == nil || s.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
						t.Errorf("%s container %s: securityContext %+v", name, c.Name, s)
					}
					env := map[string]corev1.EnvVar{}
					for _, e := range c.Env {
						env[e.Name] = e
						if e.Value != "" && e.Name != "FIREDRILL_CONFIG" {
							t.Errorf("%s: env %s has a literal value; secrets come by reference", name, e.Name)
						}
					}
					for v, path := range map[string]string{"POD_IP": "status.podIP", "POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"} {
						if e, ok := env[v]; !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != path {
							t.Errorf("%s: env %s not from the downward API's %s: %+v", name, v, path, e)
						}
					}
					if tc.vals == fullValues {
						for v, secret := range map[string]string{"ORDERS_DSN": "orders-db", "USERS_DSN": "users-db", "FIREDRILL_TOKEN": "firedrill-token"} {
							e := env[v]
							if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret {
								t.Errorf("%s: env %s not from Secret %s: %+v", name, v, secret, e)
							}
						}
					}
				}
			}
		})
	}
}

// The workloads: one drill CronJob per scheduled target, the gc CronJob, and serve.
func TestHelmChartWorkloads(t *testing.T) {
	objs := mustRender(t, helmValues(t, fullValues))
	full := helmRelease + "-firedrill"
	cronJobs := map[string]batchv1.CronJob{}
	for _, o := range objs {
		if o.Kind == "CronJob" {
			var cj batchv1.CronJob
			if err := yaml.UnmarshalStrict(o.Doc, &cj); err != nil {
				t.Fatal(err)
			}
			cronJobs[o.Name] = cj
		}
	}
	if len(cronJobs) != 3 {
		t.Errorf("CronJobs %v, want two drills and gc", slices.Sorted(maps.Keys(cronJobs)))
	}
	for _, w := range []struct {
		name, schedule     string
		args               []string
		deadline, starting int64
	}{
		{full + "-drill-orders", "45 3 * * *", []string{"drill", "--config", "/etc/firedrill/firedrill.yaml", "--target", "orders", "--output", "json"}, 3600, 3600},
		{full + "-drill-users", "15 4 * * 0", []string{"drill", "--config", "/etc/firedrill/firedrill.yaml", "--target", "users", "--output", "json"}, 7200, 600},
		{full + "-gc", "15 */6 * * *", []string{"gc", "--config", "/etc/firedrill/firedrill.yaml", "--older-than", "2h"}, 1800, 3600},
	} {
		cj, ok := cronJobs[w.name]
		if !ok {
			t.Errorf("no CronJob %s", w.name)
			continue
		}
		s, job := cj.Spec, cj.Spec.JobTemplate.Spec
		c := job.Template.Spec.Containers[0]
		if s.Schedule != w.schedule || s.ConcurrencyPolicy != batchv1.ForbidConcurrent ||
			s.StartingDeadlineSeconds == nil || *s.StartingDeadlineSeconds != w.starting ||
			s.SuccessfulJobsHistoryLimit == nil || *s.SuccessfulJobsHistoryLimit != 3 ||
			s.FailedJobsHistoryLimit == nil || *s.FailedJobsHistoryLimit != 5 ||
			job.ActiveDeadlineSeconds == nil || *job.ActiveDeadlineSeconds != w.deadline ||
			job.BackoffLimit == nil || *job.BackoffLimit != 0 ||
			job.Template.Spec.RestartPolicy != corev1.RestartPolicyNever ||
			job.Template.Spec.ServiceAccountName != full ||
			!slices.Equal(c.Args, w.args) || c.Image != "registry.example/firedrill:1.2.3" {
			t.Errorf("CronJob %s: %+v\njob %+v\ncontainer args %q image %s", w.name, s, job, c.Args, c.Image)
		}
	}

	var dep *appsv1.Deployment
	var svc *corev1.Service
	for _, o := range objs {
		switch o.Kind {
		case "Deployment":
			dep = &appsv1.Deployment{}
			if err := yaml.UnmarshalStrict(o.Doc, dep); err != nil {
				t.Fatal(err)
			}
		case "Service":
			svc = &corev1.Service{}
			if err := yaml.UnmarshalStrict(o.Doc, svc); err != nil {
				t.Fatal(err)
			}
		}
	}
	if dep == nil || svc == nil {
		t.Fatal("serve enabled, but no Deployment or Service")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"serve", "--config", "/etc/firedrill/firedrill.yaml", "--listen", ":9187"}) {
		t.Errorf("serve args %q", c.Args)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9187 || c.Ports[0].Name != "http" {
		t.Errorf("serve ports %+v", c.Ports)
	}
	// With serve.tokenEnv set, only /healthz answers without the token: both probes use it.
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("serve probes with a token: liveness %+v readiness %+v", c.LivenessProbe, c.ReadinessProbe)
	}
	if *dep.Spec.Replicas != 1 || dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("serve: %d replicas, strategy %s", *dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("the Service selects %s=%s, the serve pods have %v", k, v, dep.Spec.Template.Labels)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9187 || svc.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("Service ports %+v", svc.Spec.Ports)
	}
	if svc.Labels["app.kubernetes.io/name"] != "firedrill" {
		t.Errorf("Service labels %v: the ServiceMonitor's jobLabel reads app.kubernetes.io/name", svc.Labels)
	}

	// Without a token, readiness is /readyz.
	vals := helmValues(t, `serve: {enabled: true}`)
	for _, o := range mustRender(t, vals) {
		if o.Kind == "Deployment" {
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict(o.Doc, &d); err != nil {
				t.Fatal(err)
			}
			if p := d.Spec.Template.Spec.Containers[0].ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.StrVal != "http" {
				t.Errorf("serve readiness without a token: %+v", p)
			}
		}
	}

	// The ConfigMap holds config as YAML, unchanged.
	for _, o := range objs {
		if o.Kind != "ConfigMap" {
			continue
		}
		var cm corev1.ConfigMap
		if err := yaml.UnmarshalStrict(o.Doc, &cm); err != nil {
			t.Fatal(err)
		}
		var got any
		if err := yaml.Unmarshal([]byte(cm.Data["firedrill.yaml"]), &got); err != nil {
			t.Fatalf("firedrill.yaml in the ConfigMap: %v", err)
		}
		want := helmValues(t, fullValues)["config"].(map[string]any)
		want["history"] = map[string]any{"dir": "/var/lib/firedrill/history"} // the chart's default, merged
		if !reflect.DeepEqual(got, any(want)) {
			t.Errorf("firedrill.yaml:\n%s\nwant config:\n%v", cm.Data["firedrill.yaml"], want)
		}
	}
}

// No object hard-codes a namespace: namespaced objects go to the release's namespace, the
// scratch namespace or a configured database namespace, cluster-scoped ones carry none, and
// the chart's defaults (firedrill-scratch, "firedrill") do not leak into other settings.
func TestHelmChartNamespaces(t *testing.T) {
	clusterScoped := map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}
	for _, tc := range []struct {
		name, vals string
		allowed    []string
	}{
		{"defaults", "", []string{helmNamespace, "firedrill-scratch"}},
		{"full", fullValues, []string{helmNamespace, "drills-scratch", "shop", "accounts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := mustRender(t, helmValues(t, tc.vals))
			for _, o := range objs {
				switch {
				case clusterScoped[o.Kind]:
					if o.Namespace != "" {
						t.Errorf("%s %s is cluster-scoped but sets namespace %q", o.Kind, o.Name, o.Namespace)
					}
				case !slices.Contains(tc.allowed, o.Namespace):
					t.Errorf("%s %s in namespace %q, want one of %q", o.Kind, o.Name, o.Namespace, tc.allowed)
				}
				if o.Kind == "Namespace" && o.Name != tc.allowed[1] {
					t.Errorf("Namespace %s created, want only the scratch namespace %s", o.Name, tc.allowed[1])
				}
				if !strings.Contains(o.Name, helmRelease) && o.Kind != "Namespace" {
					t.Errorf("%s %s: name does not derive from the release's", o.Kind, o.Name)
				}
				if tc.vals != "" && bytes.Contains(o.Doc, []byte("firedrill-scratch")) {
					t.Errorf("%s %s mentions firedrill-scratch, but the scratch namespace is drills-scratch", o.Kind, o.Name)
				}
				var subjects struct {
					Subjects []rbacv1.Subject `json:"subjects"`
				}
				if err := yaml.Unmarshal(o.Doc, &subjects); err != nil {
					t.Fatal(err)
				}
				for _, s := range subjects.Subjects {
					if s.Namespace != helmNamespace {
						t.Errorf("%s %s binds %s in namespace %q, not the release's", o.Kind, o.Name, s.Name, s.Namespace)
					}
				}
			}
		})
	}
	// scratchNamespace.create: false leaves the namespace to its owner.
	for _, o := range mustRender(t, helmValues(t, `scratchNamespace: {name: firedrill-scratch, create: false}`)) {
		if o.Kind == "Namespace" {
			t.Errorf("Namespace %s rendered with scratchNamespace.create false", o.Name)
		}
	}
}

// The PrometheusRule carries exactly the groups of deploy/prometheus/firedrill-rules.yaml, with
// the rules' own {{ $labels... }} templates untouched by Helm; the chart's copy of the file is
// the file; the ServiceMonitor scrapes serve under job="firedrill" (what FiredrillDown reads).
func TestHelmChartMonitoring(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "firedrill-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile(filepath.Join(chartDir, "files", "firedrill-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(orig, copied) {
		t.Error("deploy/helm/firedrill/files/firedrill-rules.yaml differs from deploy/prometheus/firedrill-rules.yaml: copy it again")
	}
	var want struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.Unmarshal(orig, &want); err != nil {
		t.Fatal(err)
	}

	objs := mustRender(t, helmValues(t, fullValues))
	var rules, monitors int
	for _, o := range objs {
		switch o.Kind {
		case "PrometheusRule":
			rules++
			var pr struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
				Spec struct {
					Groups []any `json:"groups"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(o.Doc, &pr); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pr.Spec.Groups, want.Groups) {
				t.Errorf("PrometheusRule %s: groups differ from deploy/prometheus/firedrill-rules.yaml", o.Name)
			}
			if !bytes.Contains(o.Doc, []byte("{{ $labels.target }}")) {
				t.Errorf("PrometheusRule %s: the alerts' {{ $labels.target }} templates did not survive rendering", o.Name)
			}
			if pr.Metadata.Labels["release"] != "kps" {
				t.Errorf("PrometheusRule labels %v lack monitoring.prometheusRule.labels", pr.Metadata.Labels)
			}
		case "ServiceMonitor":
			monitors++
			var sm struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
				Spec struct {
					JobLabel  string `json:"jobLabel"`
					Endpoints []struct {
						Port string `json:"port"`
						Path string `json:"path"`
					} `json:"endpoints"`
					NamespaceSelector struct {
						MatchNames []string `json:"matchNames"`
					} `json:"namespaceSelector"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(o.Doc, &sm); err != nil {
				t.Fatal(err)
			}
			if sm.Spec.JobLabel != "app.kubernetes.io/name" || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" ||
				sm.Spec.Endpoints[0].Path != "/metrics" || !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{helmNamespace}) ||
				sm.Metadata.Labels["release"] != "kps" {
				t.Errorf("ServiceMonitor %s: %+v", o.Name, sm)
			}
		}
	}
	if rules != 1 || monitors != 1 {
		t.Errorf("%d PrometheusRules and %d ServiceMonitors, want one each", rules, monitors)
	}
	for _, o := range mustRender(t, nil) {
		if o.Kind == "PrometheusRule" || o.Kind == "ServiceMonitor" {
			t.Errorf("%s rendered by default", o.Kind)
		}
	}
}

// The chart's README documents every value, and the image runs as the uid the chart sets. The
// image itself is not built here: no registry is reachable for its base images.
func TestHelmChartREADMEAndImage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(b, &vals); err != nil {
		t.Fatal(err)
	}
	// Maps whose keys are the user's (targets, variables) are documented as one value.
	opaque := map[string]bool{"config": true, "secretEnv": true, "drills": true, "resources": true}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := prefix + k
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !opaque[key] {
				walk(key+".", sub)
				continue
			}
			if !bytes.Contains(readme, []byte("`"+key+"`")) && !bytes.Contains(readme, []byte("`"+key+"` /")) && !bytes.Contains(readme, []byte("/ `"+key+"`")) {
				t.Errorf("values.yaml's %s is not in the README's values table", key)
			}
		}
	}
	walk("", vals)

	docker, err := os.ReadFile(filepath.Join("..", "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"USER 65532:65532", "-trimpath", "./cmd/firedrill", "FROM debian:${DEBIAN_RELEASE}-slim", "postgresql-client-15", "postgresql-15"} {
		if !bytes.Contains(docker, []byte(want)) {
			t.Errorf("deploy/Dockerfile lacks %q", want)
		}
	}
	if uid, ok := vals["runAsUser"].(float64); !ok || uid != 65532 {
		t.Errorf("values runAsUser %v, the image's user is 65532", vals["runAsUser"])
	}
}
