package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/firedrill/firedrill/integration/harness"
)

// `firedrill demo` (what `make demo` runs) shows the whole pipeline and leaves nothing behind.
func TestDemo(t *testing.T) {
	harness.PostgresBinDir(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmp := harness.TempDir(t)
	t.Setenv("TMPDIR", tmp) // the sandbox goes here, so leftovers are ours to see

	r := runCLI(t, ctx, "demo")
	if r.code != 0 {
		t.Fatalf("demo exited %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{`of target "demo": PASS`, "amcheck", "sql:balances-match", "freshness", "pg_checksums", "Audit of the live estate", "wal-archiving"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "firedrill-demo-*")); len(left) != 0 {
		t.Errorf("the demo left its sandbox behind: %v", left)
	}

	r = runCLI(t, ctx, "demo", "--output", "json", "--scale", "1")
	d := parseDrill(t, r)
	if r.code != 0 || d.Status != "pass" || d.Target != "demo" || d.RecoveryPoint == nil {
		t.Fatalf("demo -o json: exit %d, %+v", r.code, d)
	}

	r = runCLI(t, ctx, "demo", "--keep", "--scale", "1")
	kept, _ := filepath.Glob(filepath.Join(tmp, "firedrill-demo-*"))
	if strings.Contains(r.stderr, "Stop production with:") {
		stop := printedCommand(t, r.stderr, "Stop production with:")
		t.Cleanup(func() { _ = exec.Command("sh", "-c", stop).Run() })
	}
	if r.code != 0 || len(kept) != 1 {
		t.Fatalf("demo --keep: exit %d, sandboxes %v\n%s%s", r.code, kept, r.stdout, r.stderr)
	}
	cfg := filepath.Join(kept[0], "firedrill.yaml")
	if _, err := os.Stat(cfg); err != nil || !strings.Contains(r.stderr, cfg) {
		t.Errorf("demo --keep should keep and name %s: %v\n%s", cfg, err, r.stderr)
	}
	// Production is left running for the other commands, and only production: no load, no
	// throwaway. The commands printed to stop it and start it again work as printed.
	stop, start := printedCommand(t, r.stderr, "Stop production with:"), printedCommand(t, r.stderr, "Start it again with:")
	prodData := filepath.Join(kept[0], "production", "data")
	if procs := processesUnder(kept[0]); len(procs) != 1 || !strings.Contains(procs[0], "postgres -D "+prodData) {
		t.Errorf("demo --keep should leave production's server running, and nothing else: %v", procs)
	}
	if r := runCLI(t, ctx, "snapshots", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "online") {
		t.Errorf("snapshots of the kept sandbox: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, ctx, "snapshot", "--config", cfg); r.code != 0 {
		t.Errorf("snapshot of the kept sandbox's running production: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, step := range []struct {
		name, command string
		running       bool
	}{{"stop", stop, false}, {"start", start, true}, {"stop", stop, false}} {
		if out, err := exec.CommandContext(ctx, "sh", "-c", step.command).CombinedOutput(); err != nil {
			t.Fatalf("the printed %s command %q: %v\n%s", step.name, step.command, err, out)
		}
		if procs := processesUnder(kept[0]); (len(procs) == 1) != step.running {
			t.Fatalf("after the printed %s command, production's processes are %v", step.name, procs)
		}
		if step.running {
			if r := runCLI(t, ctx, "snapshot", "--config", cfg); r.code != 0 {
				t.Errorf("snapshot after the printed start command: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		}
	}
	testTablesOnATerminal(t, ctx, cfg)
}

// printedCommand returns the line after heading in out, the command it introduces.
func printedCommand(t *testing.T, out, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(out, heading+"\n")
	if !ok {
		t.Fatalf("no %q in\n%s", heading, out)
	}
	line, _, _ := strings.Cut(after, "\n")
	return strings.TrimSpace(line)
}

// On a terminal 80 columns wide, 'snapshots' and 'audit' fit it (they printed 121 and up to 138
// columns), snapshot ids shortened in the middle still show their start and end, and -o json
// keeps the full values. The terminal is a real pseudo-terminal, from script(1).
func testTablesOnATerminal(t *testing.T, ctx context.Context, cfg string) {
	t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		t.Skipf("no script(1) to run firedrill on a pseudo-terminal: %v", err)
	}
	const width = 80
	r := runCLI(t, ctx, "snapshots", "--config", cfg, "-o", "json")
	var snaps []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &snaps); err != nil || len(snaps) < 2 {
		t.Fatalf("snapshots -o json: %v, %d snapshots\n%s", err, len(snaps), r.stdout)
	}
	for _, args := range [][]string{{"snapshots"}, {"audit"}} {
		cmdline := fmt.Sprintf("stty cols %d rows 40 && %s %s --config %s", width, binary, strings.Join(args, " "), cfg)
		out, _ := exec.CommandContext(ctx, "script", "-qec", cmdline, "/dev/null").Output()
		text := strings.ReplaceAll(string(out), "\r", "")
		if !strings.Contains(text, "┌") {
			t.Fatalf("%s on a terminal printed no table:\n%s", args[0], text)
		}
		for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			if w := utf8.RuneCountInString(l); w > width {
				t.Errorf("%s on a %d-column terminal printed a %d-column line:\n%s", args[0], width, w, text)
				break
			}
		}
		if args[0] != "snapshots" {
			continue
		}
		for _, s := range snaps {
			start, end := s.ID[:9], s.ID[len(s.ID)-7:] // the date, and the random suffix after '-'
			if !strings.Contains(text, s.ID) && !regexp.MustCompile(regexp.QuoteMeta(start)+`[^│ ]*…`+regexp.QuoteMeta(end)).MatchString(text) {
				t.Errorf("snapshot %s is neither whole nor %s…%s on the terminal:\n%s", s.ID, start, end, text)
			}
		}
	}
}
