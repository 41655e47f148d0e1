package integration

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/integration/harness"
)

// What the chart renders is accepted by a real API server (server-side dry run: its schema
// validation and defaulting of every object), and the configuration it ships is one firedrill
// itself loads. ServiceMonitor and PrometheusRule need prometheus-operator's CRDs, which this
// API server does not have: they are checked by TestHelmChartMonitoring instead.
func TestHelmChartAcceptedByTheAPIServerAndFiredrill(t *testing.T) {
	objs := mustRender(t, helmValues(t, fullValues))
	k := harness.StartKube(t)
	ctx := t.Context()
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(k.Config)))
	dyn, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	namespaces, byChart := map[string]bool{helmNamespace: true}, map[string]bool{}
	for _, o := range objs {
		if o.Namespace != "" {
			namespaces[o.Namespace] = true
		}
		if o.Kind == "Namespace" {
			byChart[o.Name] = true
		}
	}
	for ns := range byChart {
		namespaces[ns] = false // the chart creates it (for real below, as helm installs Namespaces first)
	}
	for ns, create := range namespaces {
		if !create {
			continue
		}
		if _, err := k.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	slices.SortStableFunc(objs, func(a, b helmObject) int { return boolInt(b.Kind == "Namespace") - boolInt(a.Kind == "Namespace") })
	checked := 0
	for _, o := range objs {
		if o.Kind == "ServiceMonitor" || o.Kind == "PrometheusRule" {
			continue
		}
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(o.Doc, &u.Object); err != nil {
			t.Fatalf("%s %s: %v", o.Kind, o.Name, err)
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s %s: the API server knows no %s: %v", o.Kind, o.Name, gvk, err)
			continue
		}
		ri := dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		if u.GetNamespace() == "" && m.Scope.Name() == "namespace" {
			ri = dyn.Resource(m.Resource).Namespace(helmNamespace)
		}
		opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		if o.Kind == "Namespace" {
			opts = metav1.CreateOptions{}
		}
		if _, err := ri.Create(ctx, &u, opts); err != nil {
			t.Errorf("%s %s/%s refused by the API server: %v", o.Kind, u.GetNamespace(), o.Name, err)
		}
		checked++
		if o.Kind == "ConfigMap" {
			var cm corev1.ConfigMap
			if err := yaml.Unmarshal(o.Doc, &cm); err != nil {
				t.Fatal(err)
			}
			for name, data := range cm.Data {
				if strings.HasSuffix(name, ".yaml") {
					if _, err := policy.Parse(name, []byte(data)); err != nil {
						t.Errorf("the chart's %s does not load in firedrill: %v", name, err)
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d objects checked", checked)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
