package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// token is the secret part of every test URL: no error may contain it.
const token = "T0KEN-s3cr3t-B0000"

// request is what a test server received.
type request struct {
	method, path string
	header       http.Header
	body         []byte
}

// recorder is a test server that answers with statuses in turn (the last one repeated).
type recorder struct {
	srv      *httptest.Server
	mu       sync.Mutex
	got      []request
	statuses []int
	answer   string
}

func newRecorder(t *testing.T, statuses ...int) *recorder {
	t.Helper()
	rec := &recorder{statuses: statuses}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.got = append(rec.got, request{r.Method, r.URL.Path, r.Header.Clone(), b})
		code := http.StatusOK
		if len(rec.statuses) > 0 {
			code = rec.statuses[min(len(rec.got), len(rec.statuses))-1]
		}
		answer := rec.answer
		rec.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

// url is the server's URL with a token in its path and query, as Slack's and most webhooks' are.
func (rec *recorder) url() string { return rec.srv.URL + "/services/" + token + "?key=" + token }

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.got...)
}

var (
	started  = time.Date(2025, 3, 1, 3, 0, 0, 0, time.UTC)
	sentAt   = time.Date(2025, 3, 1, 3, 5, 0, 0, time.UTC)
	fixedNow = func() time.Time { return sentAt }
)

func drillResult(status reports.Status, fs ...checks.Finding) *reports.DrillResult {
	return &reports.DrillResult{
		SchemaVersion: reports.SchemaVersion, ID: "20250301T030000Z-orders", Target: "orders", Engine: "postgres",
		StartedAt: started, FinishedAt: started.Add(4 * time.Minute), Status: status,
		Snapshot: &reports.SnapshotRef{ID: "snap-42", TakenAt: started.Add(-time.Hour)},
		RTO:      reports.RTO{TargetSeconds: 900, ActualSeconds: 212, Met: true},
		Phases:   []reports.Phase{{Name: "clone", Seconds: 12, CountsTowardRTO: true}},
		Checks:   fs,
	}
}

var (
	amcheckPass = checks.Passf("amcheck", nil, "all 12 indexes verified")
	amcheckFail = checks.Failf("amcheck", checks.Evidence{"index": "orders_pkey"}, "index orders_pkey is corrupt: <block 7> & more")
	rowsWarn    = checks.Warnf("row-counts", nil, "orders has 3%% fewer rows than last time")
	freshErr    = checks.Errorf("freshness", nil, "query failed: relation missing")
)

func TestWebhookBodyAndSignature(t *testing.T) {
	secret := []byte("hmac-key")
	tests := []struct {
		name, kind, status, summary string
		send                        func(ctx context.Context, w *Webhook) error
		result                      func(t *testing.T, raw json.RawMessage)
	}{
		{
			name: "drill failed", kind: KindDrill, status: "fail",
			summary: "drill of orders FAILED: 1 of 2 checks did not pass, RTO 15m met (took 3m32s), snapshot snap-42",
			send: func(ctx context.Context, w *Webhook) error {
				return w.RecordDrill(ctx, drillResult(reports.StatusFail, amcheckFail, rowsWarn))
			},
			result: func(t *testing.T, raw json.RawMessage) {
				var r reports.DrillResult
				if err := json.Unmarshal(raw, &r); err != nil {
					t.Fatal(err)
				}
				if r.ID != "20250301T030000Z-orders" || len(r.Checks) != 2 || r.Checks[0].Status != checks.Fail {
					t.Errorf("result is not the drill result: %+v", r)
				}
			},
		},
		{
			name: "audit with an error", kind: KindAudit, status: "error",
			summary: "audit of orders could not check everything: 1 of 2 checks did not pass",
			send: func(ctx context.Context, w *Webhook) error {
				return w.RecordAudit(ctx, "orders", []checks.Finding{amcheckPass, freshErr})
			},
			result: func(t *testing.T, raw json.RawMessage) {
				var r AuditResult
				if err := json.Unmarshal(raw, &r); err != nil {
					t.Fatal(err)
				}
				if len(r.Findings) != 2 || r.Findings[1].Check != "freshness" {
					t.Errorf("result is not the findings: %+v", r)
				}
			},
		},
		{
			name: "audit with nothing to check", kind: KindAudit, status: "pass",
			summary: "audit of orders passed: nothing to check",
			send:    func(ctx context.Context, w *Webhook) error { return w.RecordAudit(ctx, "orders", nil) },
			result: func(t *testing.T, raw json.RawMessage) {
				if string(raw) != `{"findings":[]}` {
					t.Errorf("result = %s, want an empty findings list", raw)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			w := &Webhook{URL: rec.url(), Secret: secret, Now: fixedNow}
			if err := tt.send(t.Context(), w); err != nil {
				t.Fatal(err)
			}
			got := rec.requests()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			req := got[0]
			if req.method != http.MethodPost || req.header.Get("Content-Type") != "application/json" {
				t.Errorf("%s with Content-Type %q, want a JSON POST", req.method, req.header.Get("Content-Type"))
			}
			// The receiver's side, written without this package's Sign.
			mac := hmac.New(sha256.New, secret)
			mac.Write(req.body)
			if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); req.header.Get(SignatureHeader) != want {
				t.Errorf("%s = %q, want %q", SignatureHeader, req.header.Get(SignatureHeader), want)
			}
			if !Verify(secret, req.body, req.header.Get(SignatureHeader)) || Verify([]byte("other"), req.body, req.header.Get(SignatureHeader)) {
				t.Error("Verify does not tell the right key from a wrong one")
			}
			if ts := req.header.Get(TimestampHeader); ts != "1740798300" {
				t.Errorf("%s = %q, want 1740798300", TimestampHeader, ts)
			}
			var m struct {
				Kind, Target, Status, Summary string
				Timestamp                     int64
				Result                        json.RawMessage
			}
			if err := json.Unmarshal(req.body, &m); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, req.body)
			}
			if m.Kind != tt.kind || m.Target != "orders" || m.Status != tt.status || m.Timestamp != sentAt.Unix() {
				t.Errorf("body = %+v, want kind %s, target orders, status %s, timestamp %d", m, tt.kind, tt.status, sentAt.Unix())
			}
			if m.Summary != tt.summary {
				t.Errorf("summary = %q\nwant      %q", m.Summary, tt.summary)
			}
			tt.result(t, m.Result)
		})
	}
}

func TestWebhookWithoutSecretIsNotSigned(t *testing.T) {
	rec := newRecorder(t)
	w := &Webhook{URL: rec.url()}
	if err := w.RecordDrill(t.Context(), drillResult(reports.StatusPass, amcheckPass)); err != nil {
		t.Fatal(err)
	}
	if h := rec.requests()[0].header; h.Get(SignatureHeader) != "" || h.Get(TimestampHeader) == "" {
		t.Errorf("headers %v: want a timestamp and no signature", h)
	}
}

func TestSlackText(t *testing.T) {
	tests := []struct {
		name string
		send func(ctx context.Context, s *Slack) error
		want string
	}{
		{
			name: "drill failed",
			send: func(ctx context.Context, s *Slack) error {
				return s.RecordDrill(ctx, drillResult(reports.StatusFail, amcheckFail, rowsWarn, freshErr))
			},
			want: ":x: *firedrill: drill of orders FAILED: 2 of 3 checks did not pass, RTO 15m met (took 3m32s), snapshot snap-42*\n" +
				"• amcheck: fail: index orders_pkey is corrupt: &lt;block 7&gt; &amp; more\n" +
				"• freshness: error: query failed: relation missing",
		},
		{
			name: "drill could not complete",
			send: func(ctx context.Context, s *Slack) error {
				r := drillResult(reports.StatusError)
				r.Error, r.RTO = "while cloning snapshot snap-42: no space left on device", reports.RTO{TargetSeconds: 900}
				return s.RecordDrill(ctx, r)
			},
			want: ":warning: *firedrill: drill of orders could not complete: snapshot snap-42: while cloning snapshot snap-42: no space left on device*",
		},
		{
			name: "drill passed with a warning",
			send: func(ctx context.Context, s *Slack) error {
				return s.RecordDrill(ctx, drillResult(reports.StatusPass, amcheckPass, rowsWarn))
			},
			want: ":white_check_mark: *firedrill: drill of orders passed: 2 checks passed, RTO 15m met (took 3m32s), snapshot snap-42*",
		},
		{
			name: "audit failed",
			send: func(ctx context.Context, s *Slack) error {
				return s.RecordAudit(ctx, "orders", []checks.Finding{checks.Failf("backup-age", nil, "newest backup is 30h old, RPO is 24h"), amcheckPass})
			},
			want: ":x: *firedrill: audit of orders FAILED: 1 of 2 checks did not pass*\n• backup-age: fail: newest backup is 30h old, RPO is 24h",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			if err := tt.send(t.Context(), &Slack{URL: rec.url()}); err != nil {
				t.Fatal(err)
			}
			got := rec.requests()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			var body map[string]string
			if err := json.Unmarshal(got[0].body, &body); err != nil || len(body) != 1 {
				t.Fatalf("body %s is not {\"text\": ...} (%v)", got[0].body, err)
			}
			if body["text"] != tt.want {
				t.Errorf("text =\n%s\nwant\n%s", body["text"], tt.want)
			}
		})
	}
}

func TestSlackListsAtMostTenChecks(t *testing.T) {
	var fs []checks.Finding
	for range 13 {
		fs = append(fs, checks.Failf("custom-sql", nil, "invariant broken"))
	}
	text := slackText(reports.StatusFail, "s", failingLines(fs))
	if n := strings.Count(text, "\n• custom-sql"); n != maxListed || !strings.HasSuffix(text, "\n• … and 3 more") {
		t.Errorf("%d checks listed, want %d and a count of the rest:\n%s", n, maxListed, text)
	}
}

// sinks builds both notifiers for one URL, for tests that hold for both.
func sinks(url string, onlyFailures bool, client *http.Client) map[string]Sink {
	return map[string]Sink{
		"webhook": &Webhook{URL: url, Secret: []byte("k"), OnlyFailures: onlyFailures, Client: client, backoff: time.Millisecond},
		"slack":   &Slack{URL: url, OnlyFailures: onlyFailures, Client: client, backoff: time.Millisecond},
	}
}

func TestOnlyFailures(t *testing.T) {
	tests := []struct {
		name string
		send func(ctx context.Context, s Sink) error
		sent bool
	}{
		{"drill passed", func(ctx context.Context, s Sink) error {
			return s.RecordDrill(ctx, drillResult(reports.StatusPass, amcheckPass))
		}, false},
		{"drill passed with a warning", func(ctx context.Context, s Sink) error {
			return s.RecordDrill(ctx, drillResult(reports.StatusPass, rowsWarn))
		}, false},
		{"drill failed", func(ctx context.Context, s Sink) error {
			return s.RecordDrill(ctx, drillResult(reports.StatusFail, amcheckFail))
		}, true},
		{"drill could not complete", func(ctx context.Context, s Sink) error {
			return s.RecordDrill(ctx, drillResult(reports.StatusError))
		}, true},
		{"audit passed", func(ctx context.Context, s Sink) error {
			return s.RecordAudit(ctx, "orders", []checks.Finding{amcheckPass})
		}, false},
		{"audit warned", func(ctx context.Context, s Sink) error {
			return s.RecordAudit(ctx, "orders", []checks.Finding{amcheckPass, rowsWarn})
		}, false},
		{"audit failed", func(ctx context.Context, s Sink) error {
			return s.RecordAudit(ctx, "orders", []checks.Finding{amcheckFail})
		}, true},
		{"audit could not check", func(ctx context.Context, s Sink) error {
			return s.RecordAudit(ctx, "orders", []checks.Finding{freshErr})
		}, true},
	}
	for _, tt := range tests {
		for _, only := range []bool{true, false} {
			rec := newRecorder(t)
			for kind, s := range sinks(rec.url(), only, nil) {
				t.Run(tt.name+"/"+kind+map[bool]string{true: "/onlyFailures", false: ""}[only], func(t *testing.T) {
					before := len(rec.requests())
					if err := tt.send(t.Context(), s); err != nil {
						t.Fatal(err)
					}
					sent := len(rec.requests()) > before
					if want := tt.sent || !only; sent != want {
						t.Errorf("sent = %v, want %v", sent, want)
					}
				})
			}
		}
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		requests int
		// status is the *Error's StatusCode; 0: no error.
		status int
	}{
		{"accepted at once", []int{http.StatusNoContent}, 1, 0},
		{"5xx then accepted", []int{500, 502, 200}, 3, 0},
		{"5xx every time", []int{503}, 1 + Retries, 503},
		{"429 is retried", []int{429, 200}, 2, 0},
		{"4xx is not retried", []int{400}, 1, 400},
		{"404 is not retried", []int{404}, 1, 404},
	}
	for _, tt := range tests {
		rec := newRecorder(t, tt.statuses...)
		for kind, s := range sinks(rec.url(), false, nil) {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				before := len(rec.requests())
				err := s.RecordDrill(t.Context(), drillResult(reports.StatusFail, amcheckFail))
				if n := len(rec.requests()) - before; n != tt.requests {
					t.Errorf("%d requests, want %d", n, tt.requests)
				}
				if tt.status == 0 {
					if err != nil {
						t.Errorf("err = %v, want none", err)
					}
					return
				}
				var e *Error
				if !errors.As(err, &e) || e.StatusCode != tt.status || e.Attempts != tt.requests || e.Type != kind {
					t.Fatalf("err = %#v, want an *Error of type %s with HTTP %d after %d attempts", err, kind, tt.status, tt.requests)
				}
			})
			rec.mu.Lock()
			rec.got = nil // the statuses start over for the other notifier
			rec.mu.Unlock()
		}
	}
}

func TestErrorsNeverHoldTheURL(t *testing.T) {
	done := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(done) }) // runs first: lets Close return
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/services/" + token + "?key=" + token
	closed.Close()

	echo := newRecorder(t, 500)
	echo.answer = "no such hook: " + echo.url() + " (/services/" + token + ")"

	tests := []struct {
		name, url string
		client    *http.Client
		want      string
	}{
		{"HTTP 500 whose body echoes the URL", echo.url(), nil, "failed: HTTP 500: no such hook: [redacted] ([redacted])"},
		{"HTTP 403", newRecorder(t, 403).url(), nil, "failed: HTTP 403"},
		{"connection refused", closedURL, nil, "connection refused"},
		{"client timeout", slow.URL + "/services/" + token, &http.Client{Timeout: 50 * time.Millisecond}, "Client.Timeout exceeded"},
		{"invalid URL", "https://hooks.example.com/services/" + token + "\x7f", nil, "invalid URL"},
		{"no URL", "", nil, "no URL configured"},
	}
	for _, tt := range tests {
		for kind, s := range sinks(tt.url, false, tt.client) {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				err := errors.Join(
					s.RecordDrill(t.Context(), drillResult(reports.StatusFail, amcheckFail)),
					s.RecordAudit(t.Context(), "orders", []checks.Finding{amcheckFail}),
				)
				if err == nil {
					t.Fatal("no error")
				}
				msg := err.Error()
				t.Log(msg)
				if strings.Contains(msg, token) || (tt.url != "" && strings.Contains(msg, tt.url)) {
					t.Errorf("the error holds the URL: %s", msg)
				}
				if !strings.HasPrefix(msg, "webhook notification (type "+kind+") failed: ") || !strings.Contains(msg, tt.want) {
					t.Errorf("err = %s, want \"webhook notification (type %s) failed: ...%s...\"", msg, kind, tt.want)
				}
				var ne *Error
				if !errors.As(err, &ne) {
					t.Fatalf("err = %v, want an *Error", err)
				}
				for e := ne.Unwrap(); e != nil; e = errors.Unwrap(e) {
					if strings.Contains(e.Error(), token) {
						t.Errorf("an error beneath holds the URL: %s", e)
					}
				}
			})
		}
	}
}

func TestCancelledWhileWaitingToRetry(t *testing.T) {
	rec := newRecorder(t, 500)
	ctx, cancel := context.WithCancel(t.Context())
	// Cancel once the first answer has been read and closed, so the cancellation reaches the
	// wait before the retry, not the request (the server sees the request before it answers).
	answered := make(chan struct{})
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil {
			resp.Body = &closeSignal{ReadCloser: resp.Body, closed: answered}
		}
		return resp, err
	})}
	w := &Webhook{URL: rec.url(), Client: client, backoff: time.Hour}
	go func() {
		<-answered
		cancel()
	}()
	err := w.RecordDrill(ctx, drillResult(reports.StatusFail))
	var e *Error
	if !errors.As(err, &e) || e.Attempts != 1 || !strings.Contains(err.Error(), "gave up waiting to retry: context canceled") {
		t.Errorf("err = %v, want HTTP 500 after 1 attempt and the cancellation", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// closeSignal closes its channel when the body is closed (once).
type closeSignal struct {
	io.ReadCloser
	closed chan struct{}
	once   sync.Once
}

func (c *closeSignal) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

// fakeSink records calls and fails with err.
type fakeSink struct {
	drills, audits int
	err            error
}

func (f *fakeSink) RecordDrill(context.Context, *reports.DrillResult) error { f.drills++; return f.err }
func (f *fakeSink) RecordAudit(context.Context, string, []checks.Finding) error {
	f.audits++
	return f.err
}

func TestMulti(t *testing.T) {
	errA, errB := errors.New("a failed"), errors.New("b failed")
	a, ok, b := &fakeSink{err: errA}, &fakeSink{}, &fakeSink{err: errB}
	m := Multi(a, ok, b)
	err := m.RecordDrill(t.Context(), drillResult(reports.StatusFail))
	if !errors.Is(err, errA) || !errors.Is(err, errB) {
		t.Errorf("RecordDrill: err = %v, want both errors", err)
	}
	if err := m.RecordAudit(t.Context(), "orders", nil); !errors.Is(err, errA) || !errors.Is(err, errB) {
		t.Errorf("RecordAudit: err = %v, want both errors", err)
	}
	for i, s := range []*fakeSink{a, ok, b} {
		if s.drills != 1 || s.audits != 1 {
			t.Errorf("sink %d: %d drills, %d audits recorded, want 1 and 1", i, s.drills, s.audits)
		}
	}
	if err := Multi(ok).RecordDrill(t.Context(), nil); err != nil {
		t.Errorf("no failing sink: err = %v", err)
	}
}
