package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/reports"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func newTestHandler(src StatusSource, o Options) http.Handler {
	if o.Now == nil {
		o.Now = func() time.Time { return now }
	}
	if o.Ready == nil {
		o.Ready = func() bool { return true }
	}
	return NewHandler(src, o)
}

func get(t *testing.T, h http.Handler, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoutes(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, "firedrill_up 1\n")
	})
	h := newTestHandler(fixtureSource(), Options{Metrics: metrics})
	tests := []struct {
		path        string
		code        int
		contentType string
		contains    []string
	}{
		{"/healthz", 200, "text/plain", []string{"ok"}},
		{"/readyz", 200, "text/plain", []string{"ready"}},
		{"/metrics", 200, "text/plain; version=0.0.4", []string{"firedrill_up 1"}},
		{"/api/v1/status", 200, "application/json", []string{`"configFile": "/etc/firedrill/config.yaml"`}},
		{"/", 200, "text/html; charset=utf-8", []string{`data-target="orders"`, `data-target="sessions-eu"`, `href="./targets/orders/drills/20250314T100000Z-ab12"`}},
		{"/targets/orders/drills/20250314T100000Z-ab12", 200, "text/html; charset=utf-8", []string{"snap-0042", `id="phases"`, "<details><summary>evidence</summary>", "pod scheduled", "crash-consistent"}},
		{"/targets/orders/drills/nope", 404, "text/html; charset=utf-8", []string{"No such drill"}},
		{"/targets/nobody/drills/20250314T100000Z-ab12", 404, "text/html; charset=utf-8", []string{"No such drill"}},
		{"/targets/orders/drills/..%2F..%2Fetc", 404, "text/html; charset=utf-8", []string{"No such drill"}},
		{"/targets/orders", 404, "text/plain", nil},
		{"/index.html", 404, "text/plain", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp := get(t, h, tt.path)
			b := body(t, resp)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, tt.code, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q, want %q", ct, tt.contentType)
			}
			for _, s := range tt.contains {
				if !strings.Contains(b, s) {
					t.Errorf("body lacks %q:\n%s", s, b)
				}
			}
			if strings.HasPrefix(tt.contentType, "text/html") && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("HTML without the restrictive Content-Security-Policy: %q", resp.Header.Get("Content-Security-Policy"))
			}
		})
	}
}

func TestStatusJSONRoundTrips(t *testing.T) {
	resp := get(t, newTestHandler(fixtureSource(), Options{}), "/api/v1/status")
	var got reports.ServeStatus
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Targets) != 3 || got.Targets[0].LastDrill == nil || got.Targets[0].LastDrill.ID != "20250314T100000Z-ab12" {
		t.Errorf("decoded status does not match the source's: %+v", got)
	}
}

func TestMethodsAndNoMetrics(t *testing.T) {
	h := newTestHandler(fixtureSource(), Options{})
	if resp := get(t, h, "/metrics"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics without a Metrics handler: %d, want 404", resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/status", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/v1/status: %d, want 405", rec.Code)
	}
}

func TestAuth(t *testing.T) {
	const token = "s3cret-token"
	var logs bytes.Buffer
	h := newTestHandler(fixtureSource(), Options{Token: token, Metrics: http.NotFoundHandler(),
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	paths := []string{"/", "/readyz", "/metrics", "/api/v1/status", "/targets/orders/drills/20250314T100000Z-ab12", "/no/such/page"}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			for _, tt := range []struct {
				name, header string
				want         string // in WWW-Authenticate
			}{
				{"no token", "", `Bearer realm="firedrill"`},
				{"wrong token", "Bearer wrong", `error="invalid_token"`},
				{"token prefix", "Bearer s3cret", `error="invalid_token"`},
				{"basic auth", "Basic czNjcmV0LXRva2Vu", `Bearer realm="firedrill"`},
			} {
				resp := get(t, h, path, "Authorization", tt.header)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401", tt.name, resp.StatusCode)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, tt.want) {
					t.Errorf("%s: WWW-Authenticate %q, want %q in it", tt.name, got, tt.want)
				}
			}
			resp := get(t, h, path, "Authorization", "bearer "+token)
			if resp.StatusCode == http.StatusUnauthorized {
				t.Errorf("the right token: 401")
			}
		})
	}
	if resp := get(t, h, "/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz without the token: %d, want 200", resp.StatusCode)
	}
	if strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "wrong") {
		t.Errorf("a token reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "unauthorized request") {
		t.Errorf("refused requests are not logged:\n%s", logs.String())
	}
}

func TestReadyz(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ready func() bool
		code  int
		body  string
	}{
		{"ready", func() bool { return true }, 200, "ready"},
		{"first audit pending", func() bool { return false }, 503, "first audit has not finished"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, NewHandler(fixtureSource(), Options{Ready: tt.ready}), "/readyz")
			if b := body(t, resp); resp.StatusCode != tt.code || !strings.Contains(b, tt.body) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, b, tt.code, tt.body)
			}
		})
	}
	t.Run("not wired", func(t *testing.T) {
		if resp := get(t, NewHandler(fixtureSource(), Options{}), "/readyz"); resp.StatusCode != 503 {
			t.Errorf("no Ready func: %d, want 503", resp.StatusCode)
		}
	})
}

func TestSourceErrors(t *testing.T) {
	h := newTestHandler(&fakeSource{err: errors.New("history unreadable")}, Options{})
	for _, path := range []string{"/", "/api/v1/status", "/targets/orders/drills/x"} {
		resp := get(t, h, path)
		if b := body(t, resp); resp.StatusCode != 500 || !strings.Contains(b, "history unreadable") {
			t.Errorf("%s: %d %q, want 500 saying why", path, resp.StatusCode, b)
		}
	}
	if resp := get(t, newTestHandler(&fakeSource{}, Options{}), "/"); resp.StatusCode != 500 {
		t.Errorf("nil status: %d, want 500", resp.StatusCode)
	}
}

// TestEscaping: findings messages, evidence, reload errors and names are untrusted text.
func TestEscaping(t *testing.T) {
	h := newTestHandler(fixtureSource(), Options{})
	for _, path := range []string{"/", "/targets/orders/drills/20250314T100000Z-ab12"} {
		b := body(t, get(t, h, path))
		if strings.Contains(b, "<script") || strings.Contains(b, "<offsite>") || strings.Contains(b, "type policy.Target <b>") {
			t.Errorf("%s: untrusted text reached the page unescaped:\n%s", path, b)
		}
	}
	b := body(t, get(t, h, "/targets/orders/drills/20250314T100000Z-ab12"))
	if !strings.Contains(b, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the hostile message is not shown escaped:\n%s", b)
	}
}

func TestRelative(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "now"}, {42 * time.Second, "42s ago"}, {5 * time.Minute, "5m ago"}, {3*time.Hour + 5*time.Minute, "3h05m ago"},
		{26 * time.Hour, "26h ago"}, {17*24*time.Hour + 3*time.Hour, "17d03h ago"}, {-90 * time.Minute, "in 1h30m"},
	} {
		if got := newStamp(now.Add(-tt.d), now).Rel; got != tt.want {
			t.Errorf("%v: %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestGolden pins the two pages' HTML; -update rewrites testdata/*.golden.html.
func TestGolden(t *testing.T) {
	h := newTestHandler(fixtureSource(), Options{})
	for _, tt := range []struct{ name, path string }{
		{"status", "/"},
		{"drill", "/targets/orders/drills/20250314T100000Z-ab12"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := body(t, get(t, h, tt.path))
			file := filepath.Join("testdata", tt.name+".golden.html")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (run go test -update and review the diff):\n%s", tt.path, file, got)
			}
		})
	}
}
