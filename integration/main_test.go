package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/reexec"

	"github.com/firedrill/firedrill/integration/harness"
)

// binary is the firedrill binary built once for the CLI tests.
var binary string

func TestMain(m *testing.M) {
	// Tests that drive restore/drill as a library start sandboxed throwaways, and the sandbox
	// re-executes this test binary as its init: hand that run to the sandbox before anything else.
	if reexec.Init() {
		return
	}
	code := func() int {
		flag.Parse()
		if testing.Short() {
			return m.Run() // integration tests skip themselves; no binary needed
		}
		dir, err := os.MkdirTemp("", "firedrill-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "firedrill")
		// Built from the repository root, so with the product's own go.mod: the integration
		// module's test-only dependencies can raise no version in the binary under test.
		build := exec.Command("go", "build", "-o", binary, "./cmd/firedrill")
		build.Dir = ".."
		out, err := build.CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building firedrill: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// cliResult is one run of the binary.
type cliResult struct {
	code   int
	stdout string
	stderr string
}

func runCLI(t testing.TB, ctx context.Context, args ...string) cliResult {
	t.Helper()
	harness.Integration(t) // the binary is built only for integration runs
	cmd := exec.CommandContext(ctx, binary, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running firedrill %v: %v", args, err)
	}
	return cliResult{code: code, stdout: so.String(), stderr: se.String()}
}

// target is what a test's firedrill.yaml needs to know.
type target struct {
	pg      *harness.Postgres
	repo    string
	scratch string
	history string
	extra   string // more YAML under the target (indented 4 spaces)
	// objectives are the lines under objectives: (indented 6 spaces); default rto 10m, rpo 1h.
	objectives string
}

func writeConfig(t testing.TB, tg target) string {
	t.Helper()
	objectives := tg.objectives
	if objectives == "" {
		objectives = "      rto: 10m\n      rpo: 1h"
	}
	dir := harness.TempDir(t)
	cfg := fmt.Sprintf(`targets:
  - name: orders
    engine: postgres
    connection:
      dsn: %q
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
    objectives:
%s
%s
history:
  dir: %s
`, tg.pg.DSN("postgres"), tg.pg.DataDir, tg.repo, tg.scratch, objectives, tg.extra, tg.history)
	p := filepath.Join(dir, "firedrill.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newTarget(t *testing.T, pg *harness.Postgres, extra string) (target, string) {
	base := harness.TempDir(t)
	tg := target{pg: pg, repo: base + "/repo", scratch: base + "/scratch", history: base + "/history", extra: extra}
	if err := os.MkdirAll(tg.scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	return tg, writeConfig(t, tg)
}

// drillJSON is the part of the drill result JSON the tests read.
type drillJSON struct {
	Target   string `json:"target"`
	Status   string `json:"status"`
	Error    string `json:"error"`
	Snapshot *struct {
		ID      string    `json:"id"`
		TakenAt time.Time `json:"takenAt"`
	} `json:"snapshot"`
	RTO struct {
		TargetSeconds float64 `json:"targetSeconds"`
		ActualSeconds float64 `json:"actualSeconds"`
		Met           bool    `json:"met"`
	} `json:"rto"`
	Phases []struct {
		Name    string  `json:"name"`
		Seconds float64 `json:"seconds"`
	} `json:"phases"`
	Checks []struct {
		Name     string         `json:"name"`
		Status   string         `json:"status"`
		Message  string         `json:"message"`
		Evidence map[string]any `json:"evidence"`
	} `json:"checks"`
	RecoveryPoint *time.Time `json:"recoveryPoint"`
}

func parseDrill(t testing.TB, r cliResult) drillJSON {
	t.Helper()
	var d drillJSON
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("drill output is not JSON (%v):\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return d
}

func (d drillJSON) check(name string) (status, message string) {
	for _, c := range d.Checks {
		if c.Name == name {
			return c.Status, c.Message
		}
	}
	return "", ""
}

func (d drillJSON) failed() []string {
	var out []string
	for _, c := range d.Checks {
		if c.Status == "fail" {
			out = append(out, c.Name)
		}
	}
	return out
}

// snapshotID takes a snapshot through the CLI and returns its id.
func snapshotID(t testing.TB, ctx context.Context, cfg string) string {
	t.Helper()
	r := runCLI(t, ctx, "snapshot", "--config", cfg, "--target", "orders", "--output", "json")
	if r.code != 0 {
		t.Fatalf("snapshot exited %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m.ID == "" {
		t.Fatalf("snapshot output %q: %v", r.stdout, err)
	}
	return m.ID
}

// leftovers lists what is in dir (which should be empty after a drill).
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// processesUnder lists live processes whose command line mentions path.
func processesUnder(path string) []string {
	cmdlines := map[string]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		if cl := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cl, path) {
			cmdlines[e.Name()] = cl
		}
	}
	var out []string
	for pid, cl := range cmdlines {
		// A child forked a moment ago still shows its parent's command line until it renames
		// itself (a new PostgreSQL backend does): it is part of its parent, not another process.
		if _, parentMatches := cmdlines[parentPID(pid)]; parentMatches {
			continue
		}
		out = append(out, pid+": "+cl)
	}
	slices.Sort(out)
	return out
}

// parentPID reads the parent's pid from /proc/PID/stat ("" when gone).
func parentPID(pid string) string {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces: fields after the last ')'.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 2 {
		return ""
	}
	return fields[1]
}
