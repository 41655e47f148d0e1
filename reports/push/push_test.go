package push_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/metrics"
	"github.com/firedrill/firedrill/reports/push"
)

type pushed struct {
	method, path, contentType, user, pass string
	body                                  string
}

// gateway is a fake Pushgateway that records each request and answers status.
func gateway(t *testing.T, status int) (*httptest.Server, func() []pushed) {
	t.Helper()
	var mu sync.Mutex
	var got []pushed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		mu.Lock()
		got = append(got, pushed{r.Method, r.URL.Path, r.Header.Get("Content-Type"), user, pass, string(b)})
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []pushed {
		mu.Lock()
		defer mu.Unlock()
		return append([]pushed(nil), got...)
	}
}

var targets = []metrics.Target{
	{Name: "orders", Engine: "postgres", RPO: 24 * time.Hour, RTO: 15 * time.Minute,
		Checks: []string{"amcheck", "row-counts"}, Phases: []string{"select", "clone", "start-and-recovery", "checks", "teardown"},
		Sources: []string{"local"}, CopyKinds: []string{"disk"}},
	{Name: "billing", Engine: "postgres", RTO: time.Hour, Checks: []string{"amcheck"}, Phases: []string{"clone"}},
}

func result(status reports.Status) *reports.DrillResult {
	start := time.Date(2025, 3, 1, 3, 0, 0, 0, time.UTC)
	r := &reports.DrillResult{
		SchemaVersion: reports.SchemaVersion, ID: "d1", Target: "orders", Engine: "postgres",
		StartedAt: start, FinishedAt: start.Add(212 * time.Second), Status: status,
		RTO: reports.RTO{TargetSeconds: 900, ActualSeconds: 200, Met: true},
		Phases: []reports.Phase{
			{Name: "select", Seconds: 1, CountsTowardRTO: true}, {Name: "clone", Seconds: 20, CountsTowardRTO: true},
			{Name: "start-and-recovery", Seconds: 150, CountsTowardRTO: true}, {Name: "checks", Seconds: 29, CountsTowardRTO: true},
			{Name: "teardown", Seconds: 12},
		},
		Checks: []checks.Finding{checks.Passf("amcheck", nil, "ok"), checks.Passf("row-counts", nil, "ok")},
	}
	if status == reports.StatusFail {
		r.Checks[0] = checks.Failf("amcheck", nil, "index orders_pkey is corrupt")
	}
	return r
}

func TestPush(t *testing.T) {
	tests := []struct {
		name      string
		result    *reports.DrillResult
		want      []string
		wantNot   []string
		wantFound bool
	}{
		{
			name:   "passed",
			result: result(reports.StatusPass),
			want: []string{
				"firedrill_drill_success 1\n",
				"firedrill_drill_last_run_timestamp_seconds 1.740798e+09\n",
				"firedrill_drill_last_success_timestamp_seconds 1.740798212e+09\n",
				`firedrill_drill_phase_duration_seconds{phase="start-and-recovery"} 150` + "\n",
				"firedrill_drill_duration_seconds_count 1\n",
				"firedrill_rto_target_seconds 900\n",
				"firedrill_drill_rto_met 1\n",
				`firedrill_check_success{check="amcheck"} 1` + "\n",
				"firedrill_build_info{",
			},
			wantNot: []string{
				`target=`,                             // the grouping key carries it
				"billing",                             // another target's series
				"firedrill_backup_", "firedrill_wal_", // the audit's, serve's business
				`check="wal-archiving"`, "firedrill_audit", // the audit's checks
			},
		},
		{
			name:   "failed: the last success is left as pushed before",
			result: result(reports.StatusFail),
			want: []string{
				"firedrill_drill_success 0\n",
				`firedrill_check_success{check="amcheck"} 0` + "\n",
				`firedrill_check_success{check="row-counts"} 1` + "\n",
			},
			wantNot: []string{"firedrill_drill_last_success_timestamp_seconds"},
		},
		{
			name: "could not complete: no duration observed, checks not run are NaN",
			result: func() *reports.DrillResult {
				r := result(reports.StatusError)
				r.Checks, r.Phases = nil, []reports.Phase{{Name: "select", Seconds: 1}}
				return r
			}(),
			want: []string{
				"firedrill_drill_success 0\n",
				`firedrill_drill_phase_duration_seconds{phase="clone"} NaN` + "\n",
			},
			wantNot: []string{"firedrill_drill_duration_seconds", "firedrill_check_success", "firedrill_drill_rto_met"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := gateway(t, http.StatusOK)
			if err := push.Push(t.Context(), srv.URL, "firedrill-drill", tt.result, targets); err != nil {
				t.Fatal(err)
			}
			reqs := got()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			p := reqs[0]
			if p.method != http.MethodPost || p.path != "/metrics/job/firedrill-drill/target/orders" {
				t.Errorf("%s %s, want POST /metrics/job/firedrill-drill/target/orders", p.method, p.path)
			}
			if !strings.HasPrefix(p.contentType, "text/plain") {
				t.Errorf("Content-Type %q, want the text format", p.contentType)
			}
			for _, w := range tt.want {
				if !strings.Contains(p.body, w) {
					t.Errorf("body lacks %q", w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(p.body, w) {
					t.Errorf("body holds %q", w)
				}
			}
			if t.Failed() {
				t.Logf("body:\n%s", p.body)
			}
		})
	}
}

func TestPushCredentialsInTheURL(t *testing.T) {
	srv, got := gateway(t, http.StatusBadRequest)
	u := strings.Replace(srv.URL, "http://", "http://pusher:pa55word@", 1)
	err := push.Push(t.Context(), u, "firedrill-drill", result(reports.StatusPass), targets)
	if err == nil || !strings.Contains(err.Error(), "unexpected status code 400") {
		t.Fatalf("err = %v, want the Pushgateway's 400", err)
	}
	if strings.Contains(err.Error(), "pa55word") {
		t.Errorf("the error holds the password: %v", err)
	}
	if p := got()[0]; p.user != "pusher" || p.pass != "pa55word" {
		t.Errorf("basic auth %q:%q, want pusher:pa55word", p.user, p.pass)
	}
}

func TestPushRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, url string
		r         *reports.DrillResult
	}{
		{"no result", "http://127.0.0.1:9091", nil},
		{"no target", "http://127.0.0.1:9091", &reports.DrillResult{}},
		{"not a URL", "127.0.0.1:9091", result(reports.StatusPass)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := push.Push(t.Context(), tt.url, "j", tt.r, targets); err == nil {
				t.Error("no error")
			}
		})
	}
}
