package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/restore/drill"
	"github.com/firedrill/firedrill/restore/snapshot/take"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"checks failed", errChecksFailed, exitFailed},
		{"checks failed, wrapped", fmt.Errorf("while drilling orders: %w", errChecksFailed), exitFailed},
		{"could not check", errCouldNotCheck, exitEnvError},
		{"usage error", usageError{errors.New("unknown flag: --x")}, exitUsage},
		{"usage error, wrapped", fmt.Errorf("while parsing: %w", usageError{errors.New("bad")}), exitUsage},
		{"policy error", &policy.Error{File: "firedrill.yaml", Line: 3, Key: "targets[0].engine", Msg: "bad"}, exitUsage},
		{"policy errors", policy.Errors{{File: "firedrill.yaml", Line: 3, Msg: "bad"}}, exitUsage},
		{"policy.ErrInvalid, wrapped", fmt.Errorf("while loading: %w", policy.ErrInvalid), exitUsage},
		{"drill.ErrUsage, wrapped", fmt.Errorf("%w: no snapshot 20261121T000000Z-abcdef", drill.ErrUsage), exitUsage},
		{"take.ErrMismatch, wrapped", fmt.Errorf("%w: wrong data directory", take.ErrMismatch), exitUsage},
		{"random error", errors.New("connection refused"), exitEnvError},
		{"cancelled", fmt.Errorf("while cloning: %w", context.Canceled), exitEnvError},
		{"joined with a usage error", errors.Join(errors.New("x"), usageError{errors.New("y")}), exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

const validConfig = `targets:
  - name: orders
    connection:
      dsn: "host=/nonexistent/socket"
    snapshot:
      local:
        dataDir: data
        repository: repo
  - name: items
    connection:
      dsn: "host=/nonexistent/socket"
    snapshot:
      local:
        dataDir: data2
        repository: repo2
history:
  dir: history
`

func TestRun(t *testing.T) {
	t.Setenv("FIREDRILL_CONFIG", "")
	dir := t.TempDir()
	valid := filepath.Join(dir, "firedrill.yaml")
	if err := os.WriteFile(valid, []byte(validConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	invalid := filepath.Join(dir, "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("targets:\n  - name: orders\n    engin: postgres\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nonexistent", "firedrill.yaml")

	tests := []struct {
		name     string
		args     []string
		want     int
		stdout   []string // substrings stdout must hold
		stderr   []string // substrings stderr must hold
		emptyOut bool
		bug      string
		check    func(t *testing.T, stdout string)
	}{
		{
			name: "version as JSON", args: []string{"version", "--output", "json"}, want: exitOK,
			check: func(t *testing.T, stdout string) {
				var v versionInfo
				if err := json.Unmarshal([]byte(stdout), &v); err != nil {
					t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
				}
				if v.Version == "" || v.GoVersion != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
					t.Errorf("version info = %+v", v)
				}
			},
		},
		{name: "version as a table", args: []string{"version"}, want: exitOK, stdout: []string{"firedrill " + version + " (" + runtime.Version()}},
		{name: "global flag before the command", args: []string{"-o", "json", "version"}, want: exitOK, stdout: []string{`"goVersion"`}},
		{
			name: "unknown output format", args: []string{"--output", "yaml", "version"}, want: exitUsage, emptyOut: true,
			stderr: []string{`unknown output format "yaml"`, "Run 'firedrill --help' for usage."},
		},
		{
			name: "unknown command", args: []string{"restore-everything"}, want: exitUsage, emptyOut: true,
			stderr: []string{`unknown command "restore-everything"`},
		},
		{name: "extra argument", args: []string{"version", "now"}, want: exitUsage, emptyOut: true, stderr: []string{`unknown command "now" for "firedrill version"`}},
		{
			name: "missing configuration", args: []string{"drill", "--config", missing}, want: exitUsage, emptyOut: true,
			stderr: []string{missing, "cannot read the configuration"},
		},
		{
			name: "missing configuration, literal path", args: []string{"drill", "--config", "/nonexistent"}, want: exitUsage, emptyOut: true,
			stderr: []string{"/nonexistent", "cannot read the configuration"},
		},
		{
			name: "invalid configuration", args: []string{"drill", "-c", invalid}, want: exitUsage, emptyOut: true,
			stderr: []string{invalid + `:3: targets[0].engin: unknown key "engin" (did you mean "engine"?)`},
		},
		{name: "unknown flag", args: []string{"drill", "--badflag"}, want: exitUsage, emptyOut: true, stderr: []string{"unknown flag: --badflag", "Run 'firedrill --help'"}},
		{
			name: "unknown target", args: []string{"drill", "--config", valid, "--target", "nope"}, want: exitUsage, emptyOut: true,
			stderr: []string{`no target "nope" in ` + valid + " (targets: orders, items)"},
		},
		{
			name: "--snapshot without --target", args: []string{"drill", "--config", valid, "--snapshot", "20261121T162000Z-a1b2c3"}, want: exitUsage, emptyOut: true,
			stderr: []string{"--snapshot needs --target"},
		},
		{
			name: "invalid log level", args: []string{"drill", "--config", valid, "--target", "orders", "--log-level", "loud"}, want: exitUsage, emptyOut: true,
			stderr: []string{`invalid --log-level "loud"`},
		},
		{name: "help", args: []string{"--help"}, want: exitOK, stdout: []string{"Exit codes:", "3  environment or infrastructure error"}},
		{name: "drill help", args: []string{"drill", "--help"}, want: exitOK, stdout: []string{"firedrill drill --target orders", "Exit codes:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip("BUG: " + tt.bug)
			}
			var stdout, stderr bytes.Buffer
			got := run(context.Background(), tt.args, nil, &stdout, &stderr)
			if got != tt.want {
				t.Errorf("run(%q) = %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.args, got, tt.want, stdout.String(), stderr.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout does not contain %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr does not contain %q:\n%s", s, stderr.String())
				}
			}
			if tt.emptyOut && stdout.Len() != 0 {
				t.Errorf("stdout is not empty on an error:\n%s", stdout.String())
			}
			if got == exitOK && stderr.Len() != 0 {
				t.Errorf("stderr is not empty on success:\n%s", stderr.String())
			}
			if tt.check != nil {
				tt.check(t, stdout.String())
			}
		})
	}
}
