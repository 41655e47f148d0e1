package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// serveConfig is a one-target configuration with a drill schedule and a short audit interval.
func serveConfig(t *testing.T, pg *harness.Postgres, extra string) (target, string) {
	t.Helper()
	tg, cfg := newTarget(t, pg, "    schedule: \"@daily\"\n    audit: {interval: 2s, skip: [copies-3-2-1]}")
	b, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append(b, []byte(extra)...), 0o600); err != nil {
		t.Fatal(err)
	}
	return tg, cfg
}

// serve --once runs every due job once: the audit, and the drill of a target never drilled;
// its exit code is the outcome's, and the drill is in the history like any other.
func TestServeOnce(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1, Archive: true})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	tg, cfg := serveConfig(t, pg, "")
	snapshotID(t, ctx, cfg)
	r := runCLI(t, ctx, "serve", "--config", cfg, "--once")
	entries, _ := os.ReadDir(filepath.Join(tg.history, "orders"))
	var results int
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			results++
		}
	}
	if results != 1 {
		t.Fatalf("%d drill results in the history after serve --once (exit %d), want 1\n%s", results, r.code, r.stderr)
	}
	if r.code != 0 {
		t.Errorf("serve --once exit %d, want 0 (a fresh snapshot, a passing drill)\n%s", r.code, r.stderr)
	}
	// The drill is not due again today: a second --once audits only.
	r = runCLI(t, ctx, "serve", "--config", cfg, "--once")
	entries, _ = os.ReadDir(filepath.Join(tg.history, "orders"))
	if len(entries) != results {
		t.Errorf("a drill that is not due ran again: %d entries", len(entries))
	}
}

// A running serve: ready after its first audit, /metrics passes promtool's lint, the status API
// shows the scheduled drill's result, a bad reload keeps the old configuration and says why, and
// SIGTERM stops it cleanly.
func TestServeDaemon(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 1, Archive: true})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	tg, cfg := serveConfig(t, pg, "serve: {jitter: 0s}\n")
	snapshotID(t, ctx, cfg)
	port := harness.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, binary, "serve", "--config", cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--log-level", "info")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil(t, "serve is ready (first audit done)", 2*time.Minute, func() bool { c, _ := get("/readyz"); return c == 200 })
	if c, _ := get("/healthz"); c != 200 {
		t.Errorf("/healthz %d", c)
	}
	// The target was never drilled: its drill runs at once.
	var st struct {
		Targets []struct {
			Target    string `json:"target"`
			LastDrill *struct {
				Status string `json:"status"`
			} `json:"lastDrill"`
			NextDrill *time.Time `json:"nextDrill"`
			Findings  []any      `json:"findings"`
		} `json:"targets"`
		ReloadError string `json:"reloadError"`
	}
	waitUntil(t, "the scheduled drill's result in /api/v1/status", 3*time.Minute, func() bool {
		c, body := get("/api/v1/status")
		if c != 200 || json.Unmarshal([]byte(body), &st) != nil || len(st.Targets) != 1 {
			return false
		}
		return st.Targets[0].LastDrill != nil
	})
	if s := st.Targets[0]; s.LastDrill.Status != "pass" || s.NextDrill == nil || !s.NextDrill.After(time.Now()) || len(s.Findings) == 0 {
		t.Errorf("status of orders: last drill %+v, next drill %v, %d findings", s.LastDrill, s.NextDrill, len(s.Findings))
	}
	var metricsText string
	waitUntil(t, "the drill's success in /metrics", time.Minute, func() bool {
		var c int
		c, metricsText = get("/metrics")
		return c == 200 && strings.Contains(metricsText, `firedrill_drill_success{target="orders"} 1`)
	})
	if out, err := harness.RunPromtool(t, metricsText, "check", "metrics"); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// A bad reload keeps the running configuration and says why.
	good, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append(good, []byte("nonsense: [\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the reload error in /api/v1/status", time.Minute, func() bool {
		_, body := get("/api/v1/status")
		return json.Unmarshal([]byte(body), &st) == nil && st.ReloadError != "" && len(st.Targets) == 1
	})
	if !strings.Contains(st.ReloadError, cfg) {
		t.Errorf("reload error %q does not name the file", st.ReloadError)
	}
	if c, _ := get("/readyz"); c != 200 {
		t.Errorf("/readyz %d after a bad reload: the old configuration still serves", c)
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
	}
	if left := leftovers(t, tg.scratch); len(left) != 0 {
		t.Errorf("scratch left behind: %v", left)
	}
}

// waitUntil polls cond until it holds; the limit only keeps a broken test from hanging.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func httpGetStatus(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// SIGTERM while a scheduled drill runs: with no grace left the drill is interrupted, cleans up
// (no scratch copy, no server), is recorded as interrupted, and serve exits 0.
func TestServeShutdownInterruptsDrillCleanly(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{PgbenchScale: 5, Archive: true})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	tg, cfg := serveConfig(t, pg, "serve: {jitter: 0s, shutdownGrace: 0s}\n")
	snapshotID(t, ctx, cfg)
	port := harness.FreePort(t)
	cmd := exec.CommandContext(ctx, binary, "serve", "--config", cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// The drill has started once its scratch directory exists.
	waitUntil(t, "the scheduled drill's scratch directory", 2*time.Minute, func() bool { return len(leftovers(t, tg.scratch)) > 0 })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM during a drill: %v\n%s", err, stderr.String())
	}
	if left := leftovers(t, tg.scratch); len(left) != 0 {
		t.Errorf("scratch left behind: %v", left)
	}
	if procs := processesUnder(tg.scratch); len(procs) != 0 {
		t.Errorf("processes left running: %v", procs)
	}
	entries, _ := os.ReadDir(filepath.Join(tg.history, "orders"))
	var interrupted bool
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(tg.history, "orders", e.Name()))
		var r struct {
			Interrupted bool `json:"interrupted"`
		}
		if json.Unmarshal(b, &r) == nil && r.Interrupted {
			interrupted = true
		}
	}
	if !interrupted {
		t.Errorf("no interrupted drill in the history (%d entries)\n%s", len(entries), stderr.String())
	}
}
