package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/firedrill/firedrill/reports"
)

// StatusSource is what the pages show; the daemon implements it.
type StatusSource interface {
	Status(ctx context.Context) (*reports.ServeStatus, error)
	// Drill returns a drill of target from the history; the error wraps fs.ErrNotExist when
	// the history has no such drill.
	Drill(ctx context.Context, target, id string) (*reports.DrillResult, error)
}

// Options configure the handler. Every field is optional.
type Options struct {
	// Metrics is served at /metrics (promhttp.HandlerFor of the daemon's private registry);
	// nil leaves /metrics unrouted (404).
	Metrics http.Handler
	// Ready reports whether the configuration is loaded and the first audit finished; /readyz
	// answers 503 until it does. Nil: never ready, so a daemon that forgot to wire it is noticed.
	Ready func() bool
	// Token, when set, is the bearer token every route but /healthz requires. It is compared in
	// constant time and never logged.
	Token string
	Log   *slog.Logger
	Now   func() time.Time
}

// NewHandler returns the daemon's HTTP handler:
//
//	GET /healthz                       200 "ok", always, without the token
//	GET /readyz                        200 once Ready, else 503 with the reason
//	GET /metrics                       Options.Metrics
//	GET /api/v1/status                 the ServeStatus as JSON
//	GET /                              the status page, one row per target
//	GET /targets/{target}/drills/{id}  a drill's page; 404 when the history has no such drill
func NewHandler(src StatusSource, o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &server{src: src, o: o, log: o.Log.With("component", "http")}
	if o.Token != "" {
		sum := sha256.Sum256([]byte(o.Token))
		s.tokenSum = sum[:]
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	mux.HandleFunc("GET /api/v1/status", s.apiStatus)
	mux.HandleFunc("GET /{$}", s.statusPage)
	mux.HandleFunc("GET /targets/{target}/drills/{id}", s.drillPage)
	s.mux = mux
	return s
}

type server struct {
	src      StatusSource
	o        Options
	log      *slog.Logger
	tokenSum []byte // sha256 of the token; nil when none is required
	mux      *http.ServeMux
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	// Liveness answers without the token: a kubelet or a load balancer probes it bare, and it
	// says nothing but "the process serves HTTP".
	if r.URL.Path != "/healthz" && !s.authorized(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized answers 401 and returns false unless the request carries the token.
func (s *server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.tokenSum == nil {
		return true
	}
	challenge := `Bearer realm="firedrill"`
	got, ok := bearer(r.Header.Get("Authorization"))
	if ok {
		// Hashing first makes the comparison constant-time in the token's length too.
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], s.tokenSum) == 1 {
			return true
		}
		challenge += `, error="invalid_token"`
	}
	s.log.InfoContext(r.Context(), "unauthorized request", "method", r.Method, "path", r.URL.Path,
		"remote", r.RemoteAddr, "tokenPresented", ok)
	w.Header().Set("WWW-Authenticate", challenge)
	http.Error(w, "unauthorized: this endpoint needs the bearer token (Authorization: Bearer ...)", http.StatusUnauthorized)
	return false
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header (the scheme is
// case-insensitive, RFC 6750).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.o.Ready == nil || !s.o.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: the configuration is not loaded yet or the first audit has not finished\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *server) apiStatus(w http.ResponseWriter, r *http.Request) {
	st, ok := s.status(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		s.log.WarnContext(r.Context(), "while writing the status JSON", "err", err)
	}
}

func (s *server) statusPage(w http.ResponseWriter, r *http.Request) {
	st, ok := s.status(w, r)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "status", statusView(st, s.o.Now()))
}

func (s *server) drillPage(w http.ResponseWriter, r *http.Request) {
	target, id := r.PathValue("target"), r.PathValue("id")
	// The path values are unescaped: "..%2F" arrives as "../". Names with separators or dot
	// segments are no drill of ours, and never reach a history that may build paths from them.
	if !safeName(target) || !safeName(id) {
		s.notFound(w, r, target, id)
		return
	}
	d, err := s.src.Drill(r.Context(), target, id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.notFound(w, r, target, id)
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "while reading a drill from the history", "target", target, "drill", id, "err", err)
		http.Error(w, "could not read the drill from the history: "+err.Error(), http.StatusInternalServerError)
		return
	case d == nil:
		s.notFound(w, r, target, id)
		return
	}
	s.render(w, r, http.StatusOK, "drill", drillView(d, s.o.Now()))
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request, target, id string) {
	s.render(w, r, http.StatusNotFound, "notfound", notFoundView{Target: target, ID: id, Root: "../../../"})
}

func (s *server) status(w http.ResponseWriter, r *http.Request) (*reports.ServeStatus, bool) {
	st, err := s.src.Status(r.Context())
	if err == nil && st == nil {
		err = errors.New("the daemon has no status yet")
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "while reading the status", "err", err)
		http.Error(w, "could not read the status: "+err.Error(), http.StatusInternalServerError)
		return nil, false
	}
	return st, true
}

// safeName reports whether a target name or drill ID from a URL can be passed on.
func safeName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 256 {
		return false
	}
	for _, c := range s {
		if c == '/' || c == '\\' || c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
