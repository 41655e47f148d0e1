package integration

import (
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/evidence"
)

// reportYear writes a signed year of evidence for target orders into dir (2026: a drill on the
// 15th of every month but July, March's failing and passing again a week later, an audit on the
// 1st of every month, May's finding the backup too old) and a configuration reading it. It
// returns the configuration and the public key.
func reportYear(t *testing.T) (cfg, pub string) {
	t.Helper()
	base := harness.TempDir(t)
	priv, pub, err := evidence.GenerateKey(filepath.Join(base, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := evidence.LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	hist := filepath.Join(base, "history")
	store := evidence.NewDirStore(filepath.Join(hist, ".evidence"), signer) // history.evidenceDir's default
	add := func(rec evidence.Record) {
		rec.Objectives = evidence.Objectives{RPOSeconds: 86400, RTOSeconds: 3600, DrillEverySeconds: 31 * 86400}
		rec.ToolVersion = "integration"
		if _, err := store.Append(t.Context(), &rec); err != nil {
			t.Fatal(err)
		}
	}
	drill := func(at time.Time, fail bool) {
		d := &reports.DrillResult{SchemaVersion: 1, ID: at.Format("20060102T150405Z") + "-d", Target: "orders", Engine: "postgres",
			StartedAt: at, FinishedAt: at.Add(12 * time.Minute), Status: reports.StatusPass,
			Snapshot: &reports.SnapshotRef{ID: "snap-" + at.Format("0102"), TakenAt: at.Add(-time.Hour), SizeBytes: 3 << 30},
			RTO:      reports.RTO{TargetSeconds: 3600, ActualSeconds: float64(600 + at.Month()*20), Met: true},
			Checks:   []checks.Finding{checks.Passf("amcheck", nil, "42 indexes verified")}}
		if fail {
			d.Status = reports.StatusFail
			d.Checks = append(d.Checks, checks.Failf("rowcount", nil, "orders: 0 rows, expected at least 1000"))
		}
		add(evidence.DrillRecord(d))
	}
	for m := time.January; m <= time.December; m++ {
		age := 7200.0
		if m == time.May {
			age = 40 * 3600
		}
		f := checks.Passf("backup-age", checks.Evidence{"sources": []map[string]any{{"source": "primary", "ageSeconds": age}}}, "backup age")
		if age > 86400 {
			f.Status = checks.Fail
		}
		at := time.Date(2026, m, 1, 6, 0, 0, 0, time.UTC)
		fs := []checks.Finding{f, checks.Passf("wal-archiving", nil, "archiving"), checks.Passf("copies-3-2-1", nil, "3 copies")}
		add(evidence.Record{SchemaVersion: evidence.SchemaVersion, Kind: evidence.KindAudit, ID: at.Format("20060102") + "-a", Target: "orders",
			StartedAt: at, FinishedAt: at.Add(time.Minute), Status: evidence.AuditStatus(fs), Audit: fs})
		if m != time.July {
			at := time.Date(2026, m, 15, 3, 0, 0, 0, time.UTC)
			drill(at, m == time.March)
			if m == time.March {
				drill(at.AddDate(0, 0, 7), false)
			}
		}
	}
	cfg = filepath.Join(base, "firedrill.yaml")
	yaml := fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection:
      dsn: "postgres://firedrill@127.0.0.1:1/orders"
    snapshot:
      driver: local
      local:
        dataDir: %s/data
        repository: %s/repo
    objectives:
      rto: 1h
      rpo: 24h
      drillEvery: 31d
history:
  dir: %s
`, base, base, hist)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, pub
}

// offline are the flags that leave Chromium no network: a proxy nothing listens on, and no name
// resolves. A report that needed anything from the network would render incomplete.
var offline = []string{"--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"}

// The period report's HTML in a real browser, offline: its title, its three charts per target,
// a screenshot that is not blank; and its PDF, printed by the command through Chromium: a
// sensible number of pages with the expected text.
func TestReportInChromium(t *testing.T) {
	harness.Integration(t)
	harness.Chromium(t)
	cfg, pub := reportYear(t)
	out := harness.TempDir(t)
	page := filepath.Join(out, "report.html")
	r := runCLI(t, t.Context(), "-c", cfg, "report", "--from", "2026-01-01", "--to", "2026-12-31", "--format", "html", "--out", page, "--key", pub)
	if r.code != 0 {
		t.Fatalf("report exited %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).Find(html); m != nil {
		t.Errorf("the page refers to the network: %s", m)
	}

	dom, err := harness.RunChromium(t, append(offline, "--dump-dom", "file://"+page)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, "<title>Restore testing evidence, 2026-01-01 to 2026-12-31</title>") {
		t.Errorf("title not found in the rendered page")
	}
	if n := strings.Count(dom, "<svg"); n != 3 {
		t.Errorf("%d svg charts in the rendered page, want 3", n)
	}
	if n := strings.Count(dom, "<circle"); n < 12+12 {
		t.Errorf("%d points in the charts, want at least 24 (12 drills, 12 audits)", n)
	}
	for _, want := range []string{"2026-07", "A.8.13", "164.308(a)(7)(ii)(B)", "(7d later)"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}

	shot := filepath.Join(out, "report.png")
	if _, err := harness.RunChromium(t, append(offline, "--window-size=1280,1600", "--hide-scrollbars", "--screenshot="+shot, "file://"+page)...); err != nil {
		t.Fatal(err)
	}
	if colours := distinctColours(t, shot); colours < 8 {
		t.Errorf("the screenshot has %d distinct colours: blank?", colours)
	}

	pdf := filepath.Join(out, "report.pdf")
	r = runCLI(t, t.Context(), "-c", cfg, "report", "--from", "2026-01-01", "--to", "2026-12-31", "--format", "pdf", "--out", pdf)
	if r.code != 0 {
		t.Fatalf("report --format pdf exited %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	info := popplerOutput(t, "pdfinfo", pdf)
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("pdfinfo gave no page count:\n%s", info)
	}
	if pages, _ := strconv.Atoi(m[1]); pages < 3 || pages > 20 {
		t.Errorf("%d pages, want 3 to 20 (overview, the target, controls, provenance)", pages)
	}
	text := strings.Join(strings.Fields(popplerOutput(t, "pdftotext", pdf, "-")), " ")
	for _, want := range []string{"Restore testing evidence", "orders", "Control mapping", "Provenance", "2026-07", "not a certification"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF's text lacks %q", want)
		}
	}
}

func popplerOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		harness.Missing(t, "poppler-utils", name+" not found", "run 'make setup' as root, or apt-get install -y --no-install-recommends poppler-utils")
	}
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// distinctColours counts the colours of a PNG, sampling every 4th pixel.
func distinctColours(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}
