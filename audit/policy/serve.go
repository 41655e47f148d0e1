package policy

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/robfig/cron/v3"
)

// Serve is serve: the long-running daemon's settings (firedrill serve).
type Serve struct {
	// Listen is serve.listen, the HTTP address (/metrics, /healthz, /readyz, /api/v1/status,
	// the status page); --listen overrides it.
	Listen string `yaml:"listen" json:"listen"`
	// AuditInterval is serve.auditInterval: how often each target is audited (a target's
	// audit.interval overrides it).
	AuditInterval Duration `yaml:"auditInterval" json:"auditInterval"`
	// Jitter is serve.jitter: each scheduled drill starts up to this much after its time,
	// spread deterministically by target, so that targets on one schedule do not all start at
	// once.
	Jitter Duration `yaml:"jitter" json:"jitter"`
	// Concurrency is serve.concurrency: how many drills run at once (audits do not count).
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// ShutdownGrace is serve.shutdownGrace: how long a SIGTERM waits for running drills to
	// finish before they are interrupted (they still clean up).
	ShutdownGrace Duration `yaml:"shutdownGrace" json:"shutdownGrace"`
	// TokenEnv / TokenFile hold a bearer token required on every endpoint but /healthz.
	TokenEnv  string `yaml:"tokenEnv" json:"tokenEnv,omitempty"`
	TokenFile string `yaml:"tokenFile" json:"tokenFile,omitempty"`
	// TLS serves HTTPS with this certificate and key (reloaded when the files change).
	TLS ServeTLS `yaml:"tls" json:"tls"`
	// Pushgateway is serve.pushgateway: where 'firedrill drill' (a Kubernetes Job) pushes its
	// result's metrics; empty: none.
	Pushgateway string `yaml:"pushgateway" json:"pushgateway,omitempty"`
}

// ServeTLS is serve.tls.
type ServeTLS struct {
	CertFile string `yaml:"certFile" json:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile" json:"keyFile,omitempty"`
}

// Notification is one entry of notifications: where drill and audit outcomes are sent.
type Notification struct {
	// Type is webhook (a JSON body, signed with HMAC-SHA256 in X-Firedrill-Signature) or slack
	// (an incoming webhook).
	Type string `yaml:"type" json:"type"`
	// URLEnv / URLFile hold the URL (a Slack webhook URL is a secret): never written in the file.
	URLEnv  string `yaml:"urlEnv" json:"urlEnv,omitempty"`
	URLFile string `yaml:"urlFile" json:"urlFile,omitempty"`
	// SecretEnv / SecretFile hold the webhook's HMAC key (type webhook).
	SecretEnv  string `yaml:"secretEnv" json:"secretEnv,omitempty"`
	SecretFile string `yaml:"secretFile" json:"secretFile,omitempty"`
	// OnlyFailures sends only outcomes that are not pass.
	OnlyFailures bool `yaml:"onlyFailures" json:"onlyFailures"`
}

// Notification types.
const (
	NotifyWebhook = "webhook"
	NotifySlack   = "slack"
)

// CronParser reads targets[].schedule: standard five fields or a descriptor (@monthly, @weekly,
// @daily, @every 6h).
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func validateServe(c *Config, add addFunc) {
	s := c.Serve
	if s.Listen != "" {
		if _, _, err := net.SplitHostPort(s.Listen); err != nil {
			add("serve.listen", "%q is not host:port (such as :9187 or 127.0.0.1:9187): %v", s.Listen, err)
		}
	}
	if s.AuditInterval.Duration <= 0 {
		add("serve.auditInterval", "must be positive, got %s", s.AuditInterval.Duration)
	}
	if s.Jitter.Duration < 0 {
		add("serve.jitter", "must not be negative")
	}
	if s.Concurrency < 1 {
		add("serve.concurrency", "must be at least 1, got %d", s.Concurrency)
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		add("serve.tls", "certFile and keyFile go together")
	}
	if s.TokenEnv != "" && s.TokenFile != "" {
		add("serve.tokenEnv", "set tokenEnv or tokenFile, not both")
	}
	if s.Pushgateway != "" {
		if u, err := url.Parse(s.Pushgateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("serve.pushgateway", "%q is not an http(s) URL", s.Pushgateway)
		}
	}
	for i, n := range c.Notifications {
		p := fmt.Sprintf("notifications[%d]", i)
		oneOf(add, p+".type", n.Type, []string{NotifyWebhook, NotifySlack})
		if (n.URLEnv == "") == (n.URLFile == "") {
			add(p+".urlEnv", "set exactly one of urlEnv and urlFile (the URL is a secret: it is never written in the configuration)")
		}
		if n.Type == NotifySlack && (n.SecretEnv != "" || n.SecretFile != "") {
			add(p+".secretEnv", "slack incoming webhooks are not signed: remove the secret, or use type webhook")
		}
	}
	for i, t := range c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		if strings.TrimSpace(t.Schedule) != "" {
			if _, err := CronParser.Parse(t.Schedule); err != nil {
				add(p+".schedule", "%q is not a schedule (five cron fields such as \"0 3 1 * *\", or @monthly, @weekly, @daily, @every 24h): %v", t.Schedule, err)
			}
		}
		if t.Audit.Interval.Duration < 0 {
			add(p+".audit.interval", "must not be negative")
		}
	}
}
