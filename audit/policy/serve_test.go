package policy

import (
	"strings"
	"testing"
	"time"
)

const serveBase = `targets:
  - name: orders
    connection: {dsn: "host=/tmp dbname=postgres"}
    snapshot: {local: {dataDir: /var/lib/pg, repository: /srv/repo}}
`

func TestServeDefaults(t *testing.T) {
	c, err := Parse("f.yaml", []byte(serveBase+"  - name: billing\n    connection: {dsn: \"host=/tmp dbname=billing\"}\n    snapshot: {local: {dataDir: /var/lib/pg2, repository: /srv/repo2}}\n    audit: {interval: 1m}\n    schedule: \"@monthly\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Serve
	if s.Listen != ":9187" || s.AuditInterval.Duration != 5*time.Minute || s.Jitter.Duration != 5*time.Minute || s.Concurrency != 1 || s.ShutdownGrace.Duration != 2*time.Minute {
		t.Errorf("serve defaults %+v", s)
	}
	if c.Targets[0].Audit.Interval.Duration != 5*time.Minute || c.Targets[1].Audit.Interval.Duration != time.Minute {
		t.Errorf("audit intervals %s, %s: want the serve default and the target's own", c.Targets[0].Audit.Interval.Duration, c.Targets[1].Audit.Interval.Duration)
	}
	if c.Targets[1].Schedule != "@monthly" || c.Targets[0].Schedule != "" {
		t.Errorf("schedules %q %q", c.Targets[0].Schedule, c.Targets[1].Schedule)
	}
	c, err = Parse("f.yaml", []byte(serveBase+"serve: {jitter: 0s}\n"))
	if err != nil || c.Serve.Jitter.Duration != 0 {
		t.Errorf("an explicit jitter of 0 is kept: %v %v", c.Serve.Jitter, err)
	}
}

func TestServeValidation(t *testing.T) {
	tests := []struct {
		name, yaml, key, msg string
	}{
		{"bad schedule", "    schedule: \"every tuesday\"\n", "targets[0].schedule", "is not a schedule"},
		{"bad listen", "serve: {listen: \"9187\"}\n", "serve.listen", "is not host:port"},
		{"zero concurrency", "serve: {concurrency: -1}\n", "serve.concurrency", "at least 1"},
		{"cert without key", "serve: {tls: {certFile: /c.pem}}\n", "serve.tls", "go together"},
		{"token twice", "serve: {tokenEnv: T, tokenFile: /t}\n", "serve.tokenEnv", "not both"},
		{"pushgateway not a URL", "serve: {pushgateway: \"pushgw:9091\"}\n", "serve.pushgateway", "http(s) URL"},
		{"notification type", "notifications: [{type: email, urlEnv: U}]\n", "notifications[0].type", "not supported"},
		{"notification URL in neither", "notifications: [{type: webhook}]\n", "notifications[0].urlEnv", "exactly one"},
		{"slack signed", "notifications: [{type: slack, urlEnv: U, secretEnv: S}]\n", "notifications[0].secretEnv", "not signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(serveBase+tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			var found bool
			for _, e := range err.(Errors) {
				if e.Key == tt.key && strings.Contains(e.Msg, tt.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("errors %v: want %s saying %q", err, tt.key, tt.msg)
			}
		})
	}
	for _, ok := range []string{"    schedule: \"0 3 1 * *\"\n", "    schedule: \"@every 6h\"\n", "serve: {listen: \"127.0.0.1:0\", concurrency: 2}\nnotifications: [{type: slack, urlFile: /run/secrets/slack, onlyFailures: true}]\n"} {
		if _, err := Parse("f.yaml", []byte(serveBase+ok)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}
