package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

const prometheusHow = "run 'make setup' as root, or apt-get install -y --no-install-recommends prometheus (its service is not needed)"

// Prometheus is a private Prometheus server for one test: it scrapes the given targets every
// second and evaluates the given rule files every second, with its data in a temporary
// directory; t.Cleanup stops it.
type Prometheus struct {
	URL string
}

// StartPrometheus starts Debian's prometheus scraping job's targets (host:port) and evaluating
// ruleFiles, and returns once it is ready.
func StartPrometheus(t testing.TB, job string, targets []string, ruleFiles ...string) *Prometheus {
	t.Helper()
	bin, err := findBinary("prometheus")
	if err != nil {
		Missing(t, "Prometheus", "prometheus not found", prometheusHow)
	}
	dir := t.TempDir()
	tj, _ := json.Marshal(targets)
	rj, _ := json.Marshal(ruleFiles)
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: %s\nscrape_configs:\n  - job_name: %q\n    static_configs:\n      - targets: %s\n", rj, job, tj)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	d := startDaemon(t, "prometheus", cmd, filepath.Join(dir, "prometheus.log"), 10*time.Second)
	p := &Prometheus{URL: "http://" + addr}
	d.waitReady(t, 60*time.Second, func() error {
		_, err := httpGet(p.URL + "/-/ready")
		return err
	})
	logComponent(t, "prometheus", "", "started on "+addr)
	return p
}

// Alert is one alert as Prometheus's /api/v1/alerts lists it.
type Alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

// Alerts lists the pending and firing alerts.
func (p *Prometheus) Alerts(t testing.TB) []Alert {
	t.Helper()
	body, err := httpGet(p.URL + "/api/v1/alerts")
	if err != nil {
		t.Fatalf("while reading Prometheus's alerts: %v", err)
	}
	var r struct {
		Data struct {
			Alerts []Alert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("while reading Prometheus's alerts: %v", err)
	}
	return r.Data.Alerts
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	return string(b), nil
}
