package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// auditJSON is the part of `firedrill audit -o json` these tests read.
type auditJSON struct {
	Targets []struct {
		Findings []struct {
			Check   string         `json:"check"`
			Status  string         `json:"status"`
			Message string         `json:"message"`
			Reasons []string       `json:"reasons"`
			Cause   string         `json:"cause"`
			Evid    map[string]any `json:"evidence"`
		} `json:"findings"`
	} `json:"targets"`
}

func writeYAML(t *testing.T, yaml string) string {
	t.Helper()
	p := harness.TempDir(t) + "/firedrill.yaml"
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue 17 item 8: every unreadable finding carries a machine-readable cause, and the same
// outage gets the same word: a wrong access key id is auth (versitygw says XAdminUserNotFound,
// HTTP 404), and a PostgreSQL that is down is network over a unix socket as over TCP.
func TestAuditCauses(t *testing.T) {
	l := startThreeLocations(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	l.everywhere(t, "locked", "cause/orders-d1.dump", dumpBytes(4096, 1))
	pg := harness.StartPostgres(t, harness.PostgresOptions{TCP: true})
	socketDSN := pg.DSN("postgres")
	tcpDSN := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=5", pg.Port)
	if err := pg.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	walOnly := func(dsn string) string {
		return strings.Replace(strings.Replace(l.config("cause/", "locked", ""), `dsn: "host=/nonexistent"`, `dsn: "`+dsn+`"`, 1),
			"skip: [wal-archiving, drill-recency]", "skip: [backup-age, backup-size, copies-3-2-1, drill-recency]", 1)
	}
	tests := []struct {
		name    string
		env     map[string]string
		yaml    string
		check   string
		cause   string
		message string
	}{
		{"a wrong access key id", map[string]string{"FD_TEST_B_AK": "AKWRONGKEYID0000"}, l.config("cause/", "locked", ""), "backup-age", "auth", "could not read offsite"},
		{"a wrong secret key", map[string]string{"FD_TEST_B_SK": "wrong-secret"}, l.config("cause/", "locked", ""), "backup-age", "auth", "could not read offsite"},
		{"an S3 endpoint that is down", nil, strings.Replace(l.config("cause/", "locked", ""), l.c.Endpoint, "http://127.0.0.1:"+fmt.Sprint(harness.FreePort(t)), 1),
			"backup-age", "network", "could not read third"},
		{"PostgreSQL down, unix socket", nil, walOnly(socketDSN), "wal-archiving", "network", "could not connect to the database"},
		{"PostgreSQL down, TCP", nil, walOnly(tcpDSN), "wal-archiving", "network", "could not connect to the database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r := runCLI(t, ctx, "audit", "--config", writeYAML(t, tt.yaml), "--output", "json")
			var rep auditJSON
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Targets) != 1 {
				t.Fatalf("exit %d, %v:\n%s\n%s", r.code, err, r.stdout, r.stderr)
			}
			if r.code != 3 {
				t.Errorf("exit %d, want 3 (could not check)", r.code)
			}
			found := false
			for _, f := range rep.Targets[0].Findings {
				if f.Check != tt.check {
					continue
				}
				found = true
				if f.Status != "error" || f.Cause != tt.cause || !strings.Contains(f.Message, tt.message) || !strings.Contains(f.Message, tt.cause+":") {
					t.Errorf("%s: status %s cause %q (%s); want error, cause %q, naming %q", f.Check, f.Status, f.Cause, f.Message, tt.cause, tt.message)
				} else {
					t.Logf("%s: cause %s: %s", f.Check, f.Cause, f.Message)
				}
			}
			if !found {
				t.Errorf("no %s finding:\n%s", tt.check, r.stdout)
			}
			// Every unreadable finding has a cause.
			for _, f := range rep.Targets[0].Findings {
				for _, reason := range f.Reasons {
					if reason == "unreadable" && f.Cause == "" {
						t.Errorf("%s is unreadable without a cause: %s", f.Check, f.Message)
					}
				}
			}
		})
	}
}

// Issue 17 item 7: a secret put where an environment variable's name belongs is a
// configuration error (exit 2, file:line) and is never printed: not in the table, the JSON, or
// debug logs. Before, it passed validation and came back as "environment variable <secret> is
// not set".
func TestAuditSecretInEnvKey(t *testing.T) {
	l := startThreeLocations(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l.everywhere(t, "locked", "secret/orders-d1.dump", dumpBytes(4096, 1))
	tests := []struct {
		name, secret string
		line         string
	}{
		// An AWS-style secret with '/' and '+': not a variable name at all.
		{"a secret key with / and +", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzSECRET1", ":45:"},
		// About a quarter of AWS secret keys have neither '/' nor '+': a valid name, but not one.
		{"a secret key that is a valid name", "wJalrXUtnFEMIK7MDENGbPxRfiCYzSECRET1", ":45:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := strings.Replace(l.config("secret/", "locked", ""), "secretAccessKeyEnv: FD_TEST_B_SK", `secretAccessKeyEnv: "`+tt.secret+`"`, 1)
			cfg := writeYAML(t, yaml)
			for _, args := range [][]string{
				{"audit", "--config", cfg},
				{"audit", "--config", cfg, "--output", "json"},
				{"audit", "--config", cfg, "--log-level", "debug"},
			} {
				r := runCLI(t, ctx, args...)
				if r.code != 2 {
					t.Errorf("%v: exit %d, want 2\n%s\n%s", args, r.code, r.stdout, r.stderr)
				}
				out := r.stdout + r.stderr
				if strings.Contains(out, tt.secret) || strings.Contains(out, tt.secret[:12]) {
					t.Errorf("%v: the secret reached the output:\n%s", args, out)
				}
				if !strings.Contains(out, "firedrill.yaml"+tt.line) || !strings.Contains(out, "secretAccessKeyEnv") {
					t.Errorf("%v: the error does not name the file, line and key:\n%s", args, out)
				}
			}
		})
	}
}
