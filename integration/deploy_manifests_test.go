package integration

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/firedrill/firedrill/integration/harness"
)

// The shipped CronJob manifests are valid for the real API server (server-side dry run: its
// validation and defaulting, nothing stored), run the drill and gc as firedrill's
// ServiceAccount with the label the throwaways' NetworkPolicies admit, and never overlap.
func TestDrillCronJobManifestIsValid(t *testing.T) {
	k := harness.StartKube(t)
	ctx := t.Context()
	if _, err := k.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "firedrill"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "deploy", "kubernetes", "drill-cronjob.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	jobs := 0
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "ServiceAccount":
			var sa corev1.ServiceAccount
			if err := yaml.UnmarshalStrict(doc, &sa); err != nil {
				t.Fatal(err)
			}
			if _, err := k.Clientset.CoreV1().ServiceAccounts("firedrill").Create(ctx, &sa, dry); err != nil {
				t.Errorf("ServiceAccount %s: %v", sa.Name, err)
			}
		case "CronJob":
			var cj batchv1.CronJob
			if err := yaml.UnmarshalStrict(doc, &cj); err != nil {
				t.Fatal(err)
			}
			jobs++
			if _, err := k.Clientset.BatchV1().CronJobs("firedrill").Create(ctx, &cj, dry); err != nil {
				t.Errorf("CronJob %s: %v", cj.Name, err)
			}
			pod := cj.Spec.JobTemplate.Spec.Template
			if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent || pod.Spec.ServiceAccountName != "firedrill" || pod.Labels["app.kubernetes.io/name"] != "firedrill" {
				t.Errorf("CronJob %s: concurrency %s, ServiceAccount %q, labels %v", cj.Name, cj.Spec.ConcurrencyPolicy, pod.Spec.ServiceAccountName, pod.Labels)
			}
		default:
			t.Errorf("unexpected kind %q in drill-cronjob.yaml", meta.Kind)
		}
	}
	if jobs != 2 {
		t.Errorf("%d CronJobs, want the drill and gc", jobs)
	}
}
