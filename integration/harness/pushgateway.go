package harness

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pushgatewayHow says how to get the Pushgateway (integration/setup/apt.sh installs it).
const pushgatewayHow = "run 'make setup' as root, or apt-get install -y --no-install-recommends prometheus-pushgateway (its service is not needed)"

var pushgatewayVersion = sync.OnceValues(func() (string, error) {
	path, err := findBinary("prometheus-pushgateway")
	if err != nil {
		return "", err
	}
	out, err := commandOutput(path, "--version")
	if err != nil {
		return "", fmt.Errorf("while running prometheus-pushgateway --version: %w", err)
	}
	// "pushgateway, version 1.5.1 (branch: debian/sid, revision: 1.5.1-2+b5)"
	if f := strings.Fields(out); len(f) >= 3 {
		return f[2], nil
	}
	return "unknown", nil
})

// Pushgateway is a private Prometheus Pushgateway for one test, on 127.0.0.1 with persistence
// off (pushed metrics live in memory only), stopped by t.Cleanup.
type Pushgateway struct {
	// URL is http://127.0.0.1:PORT, as firedrill's push and its serve.pushgateway take it.
	URL  string
	Port int
}

// StartPushgateway starts Debian's prometheus-pushgateway and returns when /-/ready answers
// (well under a second). It calls Missing when the package is not installed.
func StartPushgateway(t testing.TB) *Pushgateway {
	t.Helper()
	bin, err := findBinary("prometheus-pushgateway")
	if err != nil {
		Missing(t, "Pushgateway", "prometheus-pushgateway not found", pushgatewayHow)
	}
	g := &Pushgateway{Port: FreePort(t)}
	addr := "127.0.0.1:" + strconv.Itoa(g.Port)
	g.URL = "http://" + addr
	dir := t.TempDir()
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--persistence.file=")
	d := startDaemon(t, "prometheus-pushgateway", cmd, filepath.Join(dir, "pushgateway.log"), 10*time.Second)
	d.waitReady(t, 15*time.Second, func() error {
		_, err := pushgatewayGet(g.URL + "/-/ready")
		return err
	})
	v, _ := pushgatewayVersion()
	logComponent(t, "pushgateway", v, "started on "+addr)
	return g
}

// Metrics returns the Pushgateway's /metrics: every pushed group's metrics, with their
// grouping labels, as Prometheus scrapes them.
func (g *Pushgateway) Metrics(t testing.TB) string {
	t.Helper()
	body, err := pushgatewayGet(g.URL + "/metrics")
	if err != nil {
		t.Fatalf("while reading the Pushgateway's metrics: %v", err)
	}
	return body
}

// pushgatewayGet fetches url and returns its body; any status but 200 is an error.
func pushgatewayGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
