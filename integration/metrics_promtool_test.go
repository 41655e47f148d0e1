package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/metrics"
)

// TestMetricsPromtool serves firedrill's metrics the way serve does (promhttp on a private
// registry), after a drill, an audit and a snapshot were observed, and holds the /metrics text
// to Debian's promtool: well-formed, with no lint problems (a counter without _total, a gauge
// named _total, a missing help, a non-base unit).
//
// The drill and audit are the JSON fixtures of reports/metrics (shaped as real runs write them:
// a passing and a failing drill, an audit with failing archiving, an unreadable source, copies
// and drill recency), read back as serve reads the history.
func TestMetricsPromtool(t *testing.T) {
	harness.Integration(t)
	fixtures := filepath.Join("..", "reports", "metrics", "testdata")
	read := func(name string, v any) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(fixtures, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	reg := prometheus.NewPedanticRegistry()
	targets := []metrics.Target{
		{Name: "orders", Engine: "postgres", RPO: 24 * time.Hour, RTO: 10 * time.Minute,
			Checks: []string{"amcheck", "checksums"}, Phases: []string{"select", "clone", "start-and-recovery", "teardown"},
			Sources: []string{"primary", "snapshots", "offsite", "archive"}, CopyKinds: []string{"disk", "object-storage"}},
		// A target nothing was observed of yet: its NaN series are in the exposition too.
		{Name: "billing", Engine: "mariadb", RPO: time.Hour, Sources: []string{"dumps"}, CopyKinds: []string{"disk"}},
	}
	m, err := metrics.New(reg, targets, metrics.WithVersion("v0.0.0-test"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"drill-pass.json", "drill-fail.json", "drill-error.json"} {
		var r reports.DrillResult
		read(f, &r)
		m.ObserveDrill(&r)
	}
	var findings []checks.Finding
	read("audit-findings.json", &findings)
	m.ObserveAudit("orders", findings, 1200*time.Millisecond)
	m.AuditError("billing", "dumps")
	m.ObserveSnapshot(&reports.SnapshotResult{Target: "orders", Status: reports.SnapshotStatusComplete,
		Snapshot: &reports.SnapshotMetadata{ID: "20261123T020000Z", Target: "orders", FrozenSeconds: 0.8, TakenAt: time.Now().Add(-time.Hour)}})

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The classic text format, as promtool check metrics reads it.
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("while fetching /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v\n%s", resp.Status, err, body)
	}
	text := string(body)
	for _, n := range metrics.Names() {
		if !strings.Contains(text, "# TYPE "+n+" ") {
			t.Errorf("/metrics has no family %s", n)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
	harness.CheckMetrics(t, text)
}
