package harness_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firedrill/firedrill/integration/harness"
)

func TestPromtoolRules(t *testing.T) {
	harness.Integration(t)
	dir := filepath.Join("testdata", "promtool")
	harness.CheckRules(t, filepath.Join(dir, "rules.yml"))

	tests := []struct {
		file     string
		wantPass bool
		wantOut  string
	}{
		{file: "rules_test_pass.yml", wantPass: true, wantOut: "SUCCESS"},
		{file: "rules_test_fail.yml", wantPass: false, wantOut: "FiredrillDrillStale"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out, err := harness.TestRules(t, filepath.Join(dir, tt.file))
			if tt.wantPass && err != nil {
				t.Fatalf("TestRules: %v\n%s", err, out)
			}
			if !tt.wantPass {
				var exitErr *exec.ExitError
				if !errors.As(err, &exitErr) {
					t.Fatalf("TestRules error = %v, want promtool's non-zero exit\n%s", err, out)
				}
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("TestRules output does not mention %q:\n%s", tt.wantOut, out)
			}
		})
	}
}

func TestPromtoolMetrics(t *testing.T) {
	harness.Integration(t)
	harness.CheckMetrics(t, `# HELP firedrill_drills_total Restore drills run.
# TYPE firedrill_drills_total counter
firedrill_drills_total{result="pass"} 3
# HELP firedrill_drill_duration_seconds How long a drill took.
# TYPE firedrill_drill_duration_seconds gauge
firedrill_drill_duration_seconds 42.5
`)

	// A counter without _total is a lint problem: promtool exits 3.
	out, err := harness.RunPromtool(t, "# HELP firedrill_drills Drills.\n# TYPE firedrill_drills counter\nfiredrill_drills 3\n",
		"check", "metrics")
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Fatalf("check metrics on a counter without _total: err = %v, want exit status 3\n%s", err, out)
	}
	if !strings.Contains(out, `"_total" suffix`) {
		t.Errorf("check metrics output does not name the problem:\n%s", out)
	}
}
