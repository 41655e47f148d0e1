package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"sigs.k8s.io/yaml"

	"github.com/firedrill/firedrill/integration/harness"
)

// A real Prometheus scrapes a running serve and evaluates the shipped rules: breaking WAL
// archiving on the test PostgreSQL makes WALArchivingFailing fire (its for: window shortened
// to seconds in a copy of the rules, as the only change), and nothing fires before.
func TestServeAlertsFireInPrometheus(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{Archive: true})
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	_, cfg := newTarget(t, pg, "    audit: {interval: 1s, skip: [copies-3-2-1, drill-recency, backup-age, backup-size, backup-integrity]}")
	port := harness.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, binary, "serve", "--config", cfg, "--listen", addr)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	rules := shortenedRules(t, "WALArchivingFailing", "5s")
	prom := harness.StartPrometheus(t, "firedrill", []string{addr}, rules)
	firing := func(name string) bool {
		for _, a := range prom.Alerts(t) {
			if a.Labels["alertname"] == name && a.State == "firing" {
				return true
			}
		}
		return false
	}
	// Healthy archiving: scraped for a while, nothing about WAL fires.
	waitUntil(t, "Prometheus has scraped serve's WAL metrics", 2*time.Minute, func() bool {
		_, body, err := httpGetBody("http://" + addr + "/metrics")
		return err == nil && strings.Contains(body, `firedrill_wal_archived_total{target="orders"}`)
	})
	time.Sleep(8 * time.Second) // longer than the shortened for: window
	if firing("WALArchivingFailing") {
		t.Fatalf("WALArchivingFailing fires while archiving works\n%s", stderr.String())
	}

	// Break archiving: every segment's archive_command now fails.
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, q := range []string{"ALTER SYSTEM SET archive_command = 'false'", "SELECT pg_reload_conf()",
		"CREATE TABLE churn AS SELECT generate_series(1, 10000) AS n", "SELECT pg_switch_wal()"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	waitUntil(t, "WALArchivingFailing fires", 3*time.Minute, func() bool { return firing("WALArchivingFailing") })
}

// shortenedRules copies the shipped rules with alert's for: set to window.
func shortenedRules(t *testing.T, alert, window string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "firedrill-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	changed := 0
	for _, g := range doc["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rule := r.(map[string]any)
			if rule["alert"] == alert {
				rule["for"] = window
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatalf("no alert %s in the shipped rules", alert)
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func httpGetBody(url string) (int, string, error) {
	return httpGetStatus(url)
}
