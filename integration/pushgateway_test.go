package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/metrics"
	"github.com/firedrill/firedrill/reports/push"
)

// TestPushgateway pushes drills the way `firedrill drill` in a Kubernetes Job does to Debian's
// Pushgateway, and reads them back from its /metrics as Prometheus would scrape them: grouped by
// job and target, and a failed drill after a passing one keeps the passing one's
// last-success time (the push adds; it does not replace the group).
//
// The drills are reports/metrics' fixtures, shaped as real runs write them: a passing drill of
// orders, then a failing one (amcheck failed, RTO missed) a day later.
func TestPushgateway(t *testing.T) {
	harness.Integration(t)
	gw := harness.StartPushgateway(t)
	const job = "firedrill-drill"
	targets := []metrics.Target{
		{Name: "orders", Engine: "postgres", RPO: 24 * time.Hour, RTO: 10 * time.Minute,
			Checks: []string{"amcheck", "checksums"}, Phases: []string{"select", "clone", "start-and-recovery", "teardown"}},
		{Name: "billing", Engine: "mariadb", RPO: time.Hour},
	}
	drill := func(name string) *reports.DrillResult {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "reports", "metrics", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		var r reports.DrillResult
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return &r
	}
	pass, fail := drill("drill-pass.json"), drill("drill-fail.json")
	key := `job="` + job + `",target="orders"`

	if err := push.Push(t.Context(), gw.URL, job, pass, targets); err != nil {
		t.Fatal(err)
	}
	text := gw.Metrics(t)
	for name, want := range map[string]float64{
		"firedrill_drill_success":                        1,
		"firedrill_drill_last_run_timestamp_seconds":     float64(pass.StartedAt.Unix()),
		"firedrill_drill_last_success_timestamp_seconds": float64(pass.FinishedAt.Unix()),
		"firedrill_drill_rto_met":                        1,
		"firedrill_rto_target_seconds":                   600,
		"firedrill_drill_duration_seconds_count":         1,
	} {
		if got, ok := sample(text, name, key); !ok || got != want {
			t.Errorf("after the passing drill: %s{%s} = %v (found: %v), want %v", name, key, got, ok, want)
		}
	}
	if got, ok := sample(text, "firedrill_check_success", key, `check="amcheck"`); !ok || got != 1 {
		t.Errorf(`firedrill_check_success{check="amcheck"} = %v (found: %v), want 1`, got, ok)
	}
	if _, ok := sample(text, "push_time_seconds", key); !ok {
		t.Error("the Pushgateway recorded no push_time_seconds for the group")
	}
	if strings.Contains(text, `target="billing"`) {
		t.Error("another target's series were pushed with this drill")
	}

	if err := push.Push(t.Context(), gw.URL, job, fail, targets); err != nil {
		t.Fatal(err)
	}
	text = gw.Metrics(t)
	for name, want := range map[string]float64{
		"firedrill_drill_success":                        0,
		"firedrill_drill_last_run_timestamp_seconds":     float64(fail.StartedAt.Unix()),
		"firedrill_drill_last_success_timestamp_seconds": float64(pass.FinishedAt.Unix()),
		"firedrill_drill_rto_met":                        0,
	} {
		if got, ok := sample(text, name, key); !ok || got != want {
			t.Errorf("after the failing drill: %s{%s} = %v (found: %v), want %v", name, key, got, ok, want)
		}
	}
	if got, ok := sample(text, "firedrill_check_success", key, `check="amcheck"`); !ok || got != 0 {
		t.Errorf(`after the failing drill: firedrill_check_success{check="amcheck"} = %v (found: %v), want 0`, got, ok)
	}
	if t.Failed() {
		t.Logf("the Pushgateway's /metrics:\n%s", text)
	}
}

// sample finds the value of the series of metric name whose labels hold every one of labels
// (`name="value"` pairs, or runs of them in the Pushgateway's sorted order) in the text exposition.
func sample(text, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		set, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(set, l)
		}
		if !all {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		return v, err == nil
	}
	return 0, false
}
