package integration

import (
	"context"
	"fmt"
	"image/png"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/web"
)

// webSource is a StatusSource over fixed values, as the serve daemon would hand them over.
type webSource struct {
	status *reports.ServeStatus
	drills map[string]*reports.DrillResult
}

func (s *webSource) Status(context.Context) (*reports.ServeStatus, error) { return s.status, nil }

func (s *webSource) Drill(_ context.Context, target, id string) (*reports.DrillResult, error) {
	if d, ok := s.drills[target+"/"+id]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("drill %s of %s: %w", id, target, fs.ErrNotExist)
}

// hostileMessage would rename the page if the browser ever ran it.
const hostileMessage = `bad row <script>document.title="pwned"</script><img src=x onerror="document.title='pwned'">`

func newWebSource(now time.Time) *webSource {
	started := now.Add(-90 * time.Minute)
	drill := &reports.DrillResult{
		SchemaVersion: reports.SchemaVersion, ID: "20250314T103000Z-c0ffee", Target: "orders", Engine: "postgres",
		StartedAt: started, FinishedAt: started.Add(2 * time.Minute), Status: reports.StatusFail,
		Snapshot: &reports.SnapshotRef{ID: "snap-0007", TakenAt: started.Add(-time.Hour), AgeSeconds: 3600},
		RTO:      reports.RTO{TargetSeconds: 3600, ActualSeconds: 100, Met: true},
		Phases:   []reports.Phase{{Name: "clone", Seconds: 2, CountsTowardRTO: true}, {Name: "recovery", Seconds: 80, CountsTowardRTO: true}, {Name: "teardown", Seconds: 20}},
		Checks: []checks.Finding{
			checks.Passf("amcheck", checks.Evidence{"indexes": 12}, "12 indexes verified"),
			checks.Failf("rowcount", checks.Evidence{"query": "SELECT count(*) FROM orders"}, "%s", hostileMessage),
		},
	}
	audited := now.Add(-5 * time.Minute)
	age := 1800.0
	st := &reports.ServeStatus{SchemaVersion: 1, GeneratedAt: now, ConfigFile: "/etc/firedrill/config.yaml", ConfigLoadedAt: now.Add(-time.Hour),
		ReloadError: "config.yaml:3: unknown field \"rpoo\""}
	for _, name := range []string{"orders", "billing", "sessions"} {
		ts := reports.TargetStatus{Target: name, Engine: "postgres", RPOSeconds: 3600, RTOSeconds: 3600, LastAudit: &audited,
			BackupAgeSeconds: &age, Findings: []checks.Finding{checks.Passf("backup-age", nil, "30m old")}}
		if name == "orders" {
			ts.LastDrill = reports.Summarize(drill)
			next := now.Add(30 * 24 * time.Hour)
			ts.NextDrill = &next
		}
		st.Targets = append(st.Targets, ts)
	}
	return &webSource{status: st, drills: map[string]*reports.DrillResult{drill.Target + "/" + drill.ID: drill}}
}

// requestLog records what the browser asked for and what it got.
type requestLog struct {
	mu   sync.Mutex
	seen map[string]int // path -> status
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		l.mu.Lock()
		l.seen[r.URL.Path] = rec.code
		l.mu.Unlock()
	})
}

func (l *requestLog) status(path string) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	code, ok := l.seen[path]
	return code, ok
}

// The serve status pages in a real browser (Debian's chromium, headless): one row per target,
// a drill link that leads to the drill's page, untrusted text that stays text, and a page that
// renders at a phone's width.
func TestWebStatusPagesInChromium(t *testing.T) {
	harness.Integration(t)
	harness.Chromium(t)
	now := time.Now().UTC().Truncate(time.Second)
	src := newWebSource(now)
	log := &requestLog{seen: map[string]int{}}
	srv := httptest.NewServer(log.wrap(web.NewHandler(src, web.Options{Ready: func() bool { return true }})))
	t.Cleanup(srv.Close)

	dom, err := harness.RunChromium(t, "--dump-dom", srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`<tr class="target" data-target="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	if len(rows) != len(src.status.Targets) {
		t.Fatalf("the status page's DOM has %d target rows, want %d:\n%s", len(rows), len(src.status.Targets), dom)
	}
	for i, m := range rows {
		if m[1] != src.status.Targets[i].Target {
			t.Errorf("row %d is %q, want %q", i, m[1], src.status.Targets[i].Target)
		}
	}
	if !strings.Contains(dom, `id="reload-error"`) || !strings.Contains(dom, "unknown field") {
		t.Errorf("the reload error is not on the page:\n%s", dom)
	}

	// The drill link, as the browser resolved it, leads to the drill's page.
	m := regexp.MustCompile(`<a class="drill" href="([^"]+)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no drill link on the status page:\n%s", dom)
	}
	base, _ := url.Parse(srv.URL + "/")
	ref, err := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil {
		t.Fatal(err)
	}
	link := base.ResolveReference(ref)
	wantPath := "/targets/orders/drills/20250314T103000Z-c0ffee"
	if link.Path != wantPath {
		t.Fatalf("the drill link resolves to %s, want %s", link, wantPath)
	}
	drillDOM, err := harness.RunChromium(t, "--dump-dom", link.String())
	if err != nil {
		t.Fatal(err)
	}
	if code, ok := log.status(wantPath); !ok || code != http.StatusOK {
		t.Errorf("the browser's request for %s: seen %v, status %d", wantPath, ok, code)
	}
	for _, want := range []string{"snap-0007", `id="phases"`, "recovery", `id="findings"`, "<details>", "&lt;script&gt;"} {
		if !strings.Contains(drillDOM, want) {
			t.Errorf("the drill page's DOM lacks %q:\n%s", want, drillDOM)
		}
	}
	// Escaped markup is text: no <img> element exists, and nothing renamed the page.
	if strings.Contains(drillDOM, "pwned</title>") || strings.Contains(drillDOM, "<img") {
		t.Errorf("the finding's markup ran in the browser:\n%s", drillDOM)
	}

	// A phone's viewport: the page renders and a PNG of that width comes out.
	shot := filepath.Join(t.TempDir(), "status-390.png")
	if _, err := harness.RunChromium(t, "--screenshot="+shot, "--window-size=390,844", "--hide-scrollbars", srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 390 || b.Dy() != 844 {
		t.Errorf("screenshot is %dx%d, want 390x844", b.Dx(), b.Dy())
	}
	colours := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colours) < 8 {
		t.Errorf("the screenshot has %d colours: the page did not render", len(colours))
	}
	t.Logf("phone-width screenshot: %s (%d colours)", shot, len(colours))
}
