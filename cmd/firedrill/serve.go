package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/reports/web"
)

func newServeCmd(g *globals) *cobra.Command {
	var (
		listen string
		once   bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run audits and scheduled drills continuously, with metrics and a status page",
		Long: `Run as a daemon: audit every target every audit.interval (serve.auditInterval, default
5m), drill each target with a schedule (targets[].schedule: "0 3 1 * *", @monthly, @weekly)
when it falls due (plus up to serve.jitter, fixed per target), never two drills of one
target at once and at most serve.concurrency drills in all. A target never drilled, or whose
drill was missed while firedrill was down, is drilled at once.

HTTP on --listen (serve.listen, default :9187):
  /metrics         Prometheus metrics (see the README for names and alert rules)
  /healthz         always 200 while the process runs
  /readyz          200 once the configuration is loaded and every target was audited once
  /api/v1/status   every target's RPO/RTO status, last drill, next drill, copies (JSON)
  /                the status page; /targets/<target>/drills/<id> one drill's page
With serve.tokenEnv or serve.tokenFile every endpoint but /healthz needs
"Authorization: Bearer <token>"; with serve.tls.certFile/keyFile it serves HTTPS (the
certificate is reloaded when its files change).

SIGHUP reloads the configuration (a bad one keeps the running one, and the status page and
/api/v1/status say why). SIGTERM or Ctrl-C stops scheduling, waits serve.shutdownGrace for
running drills, then interrupts them: they clean up before firedrill exits.
Results go to the history (as 'firedrill drill' writes them), the metrics and the
notifications.

--once runs every job that is due once (every audit; drills whose schedule says they are due)
and exits with the drills' and audits' exit code, for CronJob-style use.

` + exitCodesHelp,
		Example: `  firedrill serve --config /etc/firedrill/firedrill.yaml
  firedrill serve --listen 127.0.0.1:9187
  firedrill serve --once`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, cfg, log, err := g.open()
			if err != nil {
				return err
			}
			d, err := newDaemon(cfg, log)
			if err != nil {
				return err
			}
			if once {
				return d.once(cmd.Context())
			}
			if listen == "" {
				listen = cfg.Serve.Listen
			}
			return d.serve(cmd.Context(), listen)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "HTTP address (default serve.listen, :9187)")
	cmd.Flags().BoolVar(&once, "once", false, "run every due job once and exit")
	return cmd
}

// serve runs the scheduler and the HTTP server until ctx ends, reloading on SIGHUP.
func (d *daemon) serve(ctx context.Context, listen string) error {
	cfg := d.config()
	token, err := secret(cfg.Serve.TokenEnv, cfg.Serve.TokenFile)
	if err != nil {
		return fmt.Errorf("while reading serve's bearer token: %w", err)
	}
	h := web.NewHandler(d, web.Options{Metrics: promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}),
		Ready: d.ready, Token: token, Log: d.log, Now: time.Now})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("while listening on %s (serve.listen, --listen): %w", listen, err)
	}
	if cfg.Serve.TLS.CertFile != "" {
		tc, err := web.TLSConfig(cfg.Serve.TLS.CertFile, cfg.Serve.TLS.KeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("while loading serve.tls: %w", err)
		}
		ln = tls.NewListener(ln, tc)
	}
	d.log.Info("serving", "address", ln.Addr().String(), "targets", len(cfg.Targets), "tls", cfg.Serve.TLS.CertFile != "")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	schedDone := make(chan struct{})
	go func() { d.sched.Run(ctx, cfg.Serve.ShutdownGrace.Duration); close(schedDone) }()
	for {
		select {
		case <-hup:
			d.reload(ctx)
		case err := <-served:
			return fmt.Errorf("the HTTP server stopped: %w", err)
		case <-ctx.Done():
			<-schedDone // running drills finished or were interrupted and cleaned up
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Warn("the HTTP server did not shut down cleanly", "error", err)
			}
			return nil
		}
	}
}

// once runs every due job once; its exit code is the worst outcome's.
func (d *daemon) once(ctx context.Context) error {
	d.sched.RunDue(ctx)
	return d.outcome(ctx)
}
