package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/integration/harness"
)

// hardened is one target's configuration for the tests of issue 8's items 4, 6 and 7.
type hardened struct {
	dsn     string // connection.dsn, or
	dsnEnv  string // connection.dsnEnv
	dataDir string
	repo    string
	scratch string
	history string
	// restore is more YAML under restore.local (indented 8 spaces).
	restore string
}

// write writes the configuration and returns its path and text.
func (h hardened) write(t *testing.T) (string, string) {
	t.Helper()
	conn := fmt.Sprintf("dsn: %q", h.dsn)
	if h.dsnEnv != "" {
		conn = "dsnEnv: " + h.dsnEnv
	}
	doc := fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection:
      %s
    snapshot:
      driver: local
      mode: online
      local:
        dataDir: %s
        repository: %s
    restore:
      runtime: local
      local:
        scratchDir: %s
%s    objectives:
      rto: 10m
      rpo: 1h
history:
  dir: %s
`, conn, h.dataDir, h.repo, h.scratch, h.restore, h.history)
	p := filepath.Join(harness.TempDir(t), "firedrill.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, doc
}

// newHardened is a target of pg with fresh repository, scratch and history directories.
func newHardened(t *testing.T, pg *harness.Postgres) hardened {
	base := harness.TempDir(t)
	h := hardened{dsn: pg.DSN("postgres"), dataDir: pg.DataDir, repo: base + "/repo", scratch: base + "/scratch", history: base + "/history"}
	if err := os.MkdirAll(h.scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

// at returns "file:N: " for the first line of doc containing s.
func at(t *testing.T, file, doc, s string) string {
	t.Helper()
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, s) {
			return file + ":" + strconv.Itoa(i+1) + ": "
		}
	}
	t.Fatalf("no line of the configuration contains %q", s)
	return ""
}

// entries lists the names directly in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// Item 6: a dataDir that is a symlink to the real data directory is snapshotted and drilled
// like the real one (the copy used to skip the linked root and then fail copying WAL, exit 3).
func TestSymlinkedDataDirSnapshotAndDrill(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{DataChecksums: true, PgbenchScale: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h := newHardened(t, pg)
	h.dataDir = filepath.Join(harness.TempDir(t), "pgdata-link")
	if err := os.Symlink(pg.DataDir, h.dataDir); err != nil {
		t.Fatal(err)
	}
	cfg, _ := h.write(t)
	r := runCLI(t, ctx, "snapshot", "--config", cfg, "--target", "orders", "--output", "json")
	if r.code != 0 {
		t.Fatalf("snapshot through a symlinked dataDir: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, ctx, "drill", "--config", cfg, "--target", "orders", "--output", "json")
	d := parseDrill(t, r)
	if r.code != 0 || d.Status != "pass" {
		t.Fatalf("drill: exit %d status %s failed=%v error=%s\n%s", r.code, d.Status, d.failed(), d.Error, r.stderr)
	}
	for _, name := range []string{"snapshot-integrity", "recovery", "amcheck", "row-counts"} {
		if st, msg := d.check(name); st != "pass" {
			t.Errorf("check %s = %q (%s), want pass", name, st, msg)
		}
	}
}

// Item 6: a repository inside the data directory (directly, through a symlinked dataDir, or
// inside a tablespace the server reports) is a configuration error, exit 2, and nothing is
// created in the data directory or the tablespace.
func TestRepositoryInsideCopiedDirectoryRefused(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spc := filepath.Join(pg.Dir, "spc")
	if err := os.Mkdir(spc, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := pg.RunAs.Chown(spc); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "postgres", "CREATE TABLESPACE fast LOCATION '"+spc+"'"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "postgres", "CREATE TABLE hot (id int) TABLESPACE fast"); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(harness.TempDir(t), "pgdata-link")
	if err := os.Symlink(pg.DataDir, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		dataDir string
		repo    string
		// watched is the directory that must be left as it was.
		watched string
		// validation: refused when the configuration is loaded (file:line), else at snapshot
		// time once the server named its tablespaces.
		validation bool
		want       string
	}{
		{"inside the data directory", pg.DataDir, pg.DataDir + "/firedrill-repo", pg.DataDir, true,
			"targets[0].snapshot.local.repository: inside the data directory " + pg.DataDir + " of target orders (targets[0].snapshot.local.dataDir, line 10): a snapshot would copy the repository into itself"},
		{"inside a symlinked data directory, named by its real path", link, pg.DataDir + "/firedrill-repo", pg.DataDir, true,
			"targets[0].snapshot.local.repository: inside the data directory " + link + ", which resolves to " + pg.DataDir + ", of target orders"},
		{"inside a tablespace", pg.DataDir, spc + "/firedrill-repo", spc, false,
			"target orders's snapshot repository " + spc + "/firedrill-repo is inside tablespace fast " + spc + ", which the snapshot copies"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHardened(t, pg)
			h.dataDir, h.repo = tc.dataDir, tc.repo
			cfg, doc := h.write(t)
			before := entries(t, tc.watched)
			r := runCLI(t, ctx, "snapshot", "--config", cfg, "--target", "orders")
			if r.code != 2 {
				t.Errorf("snapshot: exit %d, want 2\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			want := tc.want
			if tc.validation {
				want = at(t, cfg, doc, "repository: ") + tc.want
			}
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
			if len(r.stderr) > 2000 {
				t.Errorf("a %d-byte error: %s", len(r.stderr), r.stderr)
			}
			if _, err := os.Lstat(tc.repo); !os.IsNotExist(err) {
				t.Errorf("the repository %s was created (%v)", tc.repo, err)
			}
			if after := entries(t, tc.watched); !slices.Equal(before, after) {
				t.Errorf("%s changed: %v before, %v after", tc.watched, before, after)
			}
		})
	}
}

// Item 7: a malformed DSN is a configuration error (exit 2) that says what is wrong, at the
// line of connection.dsn, for every command, and never shows the password.
func TestMalformedDSNIsAConfigurationError(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const password = "s3cret-PW-7"
	h := newHardened(t, pg)
	h.dsn = "postgres://postgres:" + password + "@127.0.0.1:54x2/postgres"
	cfg, doc := h.write(t)
	want := at(t, cfg, doc, "dsn: ") + "targets[0].connection.dsn: malformed DSN: invalid port"
	for _, cmd := range []string{"snapshot", "drill", "audit", "snapshots"} {
		t.Run(cmd, func(t *testing.T) {
			r := runCLI(t, ctx, cmd, "--config", cfg)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, password) {
				t.Errorf("the output shows the password:\n%s\n%s", r.stdout, r.stderr)
			}
		})
	}
	t.Run("from dsnEnv", func(t *testing.T) {
		h.dsnEnv = "FIREDRILL_TEST_ORDERS_DSN"
		t.Setenv(h.dsnEnv, "host=127.0.0.1 port=abc user=postgres password="+password)
		cfg, _ := h.write(t)
		r := runCLI(t, ctx, "snapshot", "--config", cfg)
		want := "environment: targets.orders.connection.dsnEnv: environment variable FIREDRILL_TEST_ORDERS_DSN holds a malformed DSN: invalid port"
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, want 2 and %q:\n%s", r.code, want, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, password) {
			t.Errorf("the output shows the password:\n%s\n%s", r.stdout, r.stderr)
		}
	})
}

// Item 7: a wrong password is reported as an authentication failure for the user, not as an
// unreachable server, by snapshot and by audit, without the password.
func TestWrongPasswordSaysAuthenticationFailed(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{TCP: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const right, wrong = "right-PW-7", "wrong-PW-7"
	harness.RequirePassword(t, pg, "postgres", right)

	h := newHardened(t, pg)
	h.dsn = harness.TCPDSN(pg, "postgres", wrong)
	cfg, _ := h.write(t)
	r := runCLI(t, ctx, "snapshot", "--config", cfg, "--target", "orders")
	want := `authentication failed for user "postgres" on target orders: password authentication failed for user "postgres" (SQLSTATE 28P01)`
	if r.code != 3 || !strings.Contains(r.stderr, want) {
		t.Errorf("snapshot: exit %d, want 3 and %q:\n%s", r.code, want, r.stderr)
	}
	if strings.Contains(r.stderr, "is the server running") || strings.Contains(r.stderr, "unreachable") {
		t.Errorf("snapshot blames the server's reachability:\n%s", r.stderr)
	}
	r2 := runCLI(t, ctx, "audit", "--config", cfg, "--target", "orders", "--output", "json")
	if f := parseAuditJSON(t, r2, "orders")["wal-archiving"]; f.Status != "error" || !strings.Contains(f.Message, `authentication failed for user "postgres"`) {
		t.Errorf("audit's wal-archiving = %s %q, want error saying authentication failed for user postgres", f.Status, f.Message)
	}
	for _, out := range []string{r.stdout + r.stderr, r2.stdout + r2.stderr} {
		if strings.Contains(out, wrong) {
			t.Errorf("the output shows the password:\n%s", out)
		}
	}

	// The same configuration with the right password snapshots: the refusal was the password.
	h.dsn = harness.TCPDSN(pg, "postgres", right)
	cfg, _ = h.write(t)
	if r := runCLI(t, ctx, "snapshot", "--config", cfg, "--target", "orders"); r.code != 0 {
		t.Errorf("snapshot with the right password: exit %d\n%s", r.code, r.stderr)
	}
}

// Item 7: a runAsUser that does not exist is a configuration error at its line (exit 2), not
// "set restore.local.runAsUser" with exit 3.
func TestRunAsUserThatDoesNotExist(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PostgresOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := newHardened(t, pg)
	h.restore = "        runAsUser: nosuchuser\n"
	cfg, doc := h.write(t)
	want := at(t, cfg, doc, "runAsUser:") + `targets[0].restore.local.runAsUser: user "nosuchuser" does not exist on this machine`
	for _, cmd := range []string{"drill", "snapshot"} {
		r := runCLI(t, ctx, cmd, "--config", cfg, "--target", "orders")
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, want 2 and %q:\n%s", cmd, r.code, want, r.stderr)
		}
	}
	if left := entries(t, h.scratch); len(left) != 0 {
		t.Errorf("scratch directory not empty: %v", left)
	}
}

// Items 4 and 7 through the binary: overlapping repositories name both lines, a YAML syntax
// error names its own line, and a type error no longer hides the other problems. Exit 2 each.
func TestConfigurationErrorsThroughCLI(t *testing.T) {
	ctx := context.Background()
	dir := harness.TempDir(t)
	target := func(name, repo string) string {
		return "  - name: " + name + "\n    connection: {dsn: \"host=/run/pg\"}\n    snapshot:\n      local:\n        dataDir: /srv/" + name + "\n        repository: " + repo + "\n"
	}
	cases := []struct {
		name string
		yaml string
		want []string // each "N: text": an error at line N
	}{
		{"two targets share a repository", "targets:\n" + target("a", "/backups/shared") + target("b", "/backups/shared"), []string{
			"13: targets[1].snapshot.local.repository: the same directory as the repository /backups/shared of target a (targets[0].snapshot.local.repository, line 7)",
		}},
		{"a repository inside another target's", "targets:\n" + target("a", "/backups") + target("b", "/backups/b"), []string{
			"13: targets[1].snapshot.local.repository: inside the repository /backups of target a (targets[0].snapshot.local.repository, line 7)",
		}},
		{"a tab on line 3", "targets:\n  - name: orders\n\tconnection: x\n", []string{
			"3: malformed YAML: found a tab character that violates indentation",
		}},
		{"a type error and validation errors", "targets:\n  - name: orders\n    engine: oracle\n    connection: {dsn: \"host=/run/pg\"}\n    snapshot:\n      local: {dataDir: /d, repository: /r, parallel: many}\n    checks: {parallel: 99}\n", []string{
			`3: targets[0].engine: "oracle" is not supported`,
			"6: targets[0].snapshot.local.parallel: expected a different type: got !!str `many` into int",
			"7: targets[0].checks.parallel: must be between 1 and 64, got 99",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, ctx, "snapshot", "--config", p)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\n%s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, p+":"+w) {
					t.Errorf("stderr does not say %q:\n%s", p+":"+w, r.stderr)
				}
			}
		})
	}
}
