package reports_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesPointOneWay keeps reports and checks below restore and audit (issue 9): cmd
// imports audit, restore and reports; those import checks; reports and checks import nothing of
// restore or audit, so the result models here can be used by both sides without cycles.
func TestDependenciesPointOneWay(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	const mod = "github.com/firedrill/firedrill/"
	cmd := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}", mod+"checks/...", mod+"reports/...")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	var bad []string
	for _, p := range strings.Fields(string(out)) {
		for _, forbidden := range []string{mod + "restore", mod + "audit"} {
			if p == forbidden || strings.HasPrefix(p, forbidden+"/") {
				bad = append(bad, p)
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("checks and reports must import nothing of restore or audit; their dependencies include:\n  %s\n(move the model they need into reports and alias it from restore)",
			strings.Join(bad, "\n  "))
	}
	if !strings.Contains(string(out), mod+"reports/render") {
		t.Errorf("go list listed no reports/render; output:\n%s", out)
	}
}
