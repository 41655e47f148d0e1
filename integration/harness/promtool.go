package harness

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

const promtoolHow = "run 'make setup' as root, or apt-get install -y --no-install-recommends prometheus (promtool only; its service is not needed)"

var promtoolVersion = sync.OnceValues(func() (string, error) {
	path, err := findBinary("promtool")
	if err != nil {
		return "", err
	}
	out, err := commandOutput(path, "--version")
	if err != nil {
		return "", fmt.Errorf("while running promtool --version: %w", err)
	}
	// "promtool, version 2.42.0+ds (branch: ...)"
	if f := strings.Fields(out); len(f) >= 3 {
		return f[2], nil
	}
	return "unknown", nil
})

// promtool returns the path of Debian's promtool, or calls Missing.
func promtool(t testing.TB) string {
	t.Helper()
	path, err := findBinary("promtool")
	if err != nil {
		Missing(t, "promtool", "promtool not found", promtoolHow)
	}
	return path
}

// RunPromtool runs promtool with args, stdin as its standard input, and returns its combined
// output. err is non-nil when promtool exits non-zero (an *exec.ExitError, wrapped: its exit code
// tells lint problems, 3, from errors, 1). It calls Missing when promtool is not installed.
func RunPromtool(t testing.TB, stdin string, args ...string) (output string, err error) {
	t.Helper()
	path := promtool(t)
	var out bytes.Buffer
	cmd := exec.CommandContext(t.Context(), path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	if v, err := promtoolVersion(); err == nil {
		logComponent(t, "promtool", v, "ran "+strings.Join(args[:min(len(args), 2)], " "))
	}
	if runErr != nil {
		return out.String(), fmt.Errorf("while running promtool %s: %w", strings.Join(args, " "), runErr)
	}
	return out.String(), nil
}

// CheckRules fails t unless `promtool check rules` accepts every rule file.
func CheckRules(t testing.TB, files ...string) {
	t.Helper()
	if out, err := RunPromtool(t, "", append([]string{"check", "rules"}, files...)...); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
}

// TestRules runs `promtool test rules` (the alert unit tests) on the test files and returns its
// output; err is non-nil when a test fails or the files are invalid. Test files name their rule
// files relative to themselves.
func TestRules(t testing.TB, files ...string) (output string, err error) {
	t.Helper()
	return RunPromtool(t, "", append([]string{"test", "rules"}, files...)...)
}

// CheckMetrics fails t unless `promtool check metrics` finds the Prometheus text exposition
// well-formed and free of lint problems (such as a counter without _total).
func CheckMetrics(t testing.TB, text string) {
	t.Helper()
	if out, err := RunPromtool(t, text, "check", "metrics"); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
}
