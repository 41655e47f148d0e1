package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// maxListed is how many failing checks a notification names; the rest are counted.
const maxListed = 10

// drillStatus is a drill's status as a notification states it: a result without one proved
// nothing.
func drillStatus(r *reports.DrillResult) reports.Status {
	if r.Status == "" {
		return reports.StatusError
	}
	return r.Status
}

// auditStatus is the status an audit's findings decide (warn passes).
func auditStatus(findings []checks.Finding) reports.Status {
	return reports.FromFinding(checks.Worst(findings))
}

// drillSummary is one line a person reads first: what ran, how it ended, and why.
func drillSummary(r *reports.DrillResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "drill of %s ", r.Target)
	switch drillStatus(r) {
	case reports.StatusPass:
		b.WriteString("passed")
	case reports.StatusFail:
		b.WriteString("FAILED")
	default:
		b.WriteString("could not complete")
	}
	var why []string
	if n, bad := countChecks(r.Checks); n > 0 {
		if bad > 0 {
			why = append(why, fmt.Sprintf("%d of %d checks did not pass", bad, n))
		} else {
			why = append(why, fmt.Sprintf("%d checks passed", n))
		}
	}
	if r.RTO.TargetSeconds > 0 && (r.Status == reports.StatusPass || r.Status == reports.StatusFail) {
		verb := "met"
		if !r.RTO.Met {
			verb = "MISSED"
		}
		why = append(why, fmt.Sprintf("RTO %s %s (took %s)", seconds(r.RTO.TargetSeconds), verb, seconds(r.RTO.ActualSeconds)))
	}
	if r.Snapshot != nil && r.Snapshot.ID != "" {
		why = append(why, "snapshot "+r.Snapshot.ID)
	}
	if r.Interrupted {
		why = append(why, "interrupted")
	}
	if len(why) > 0 {
		b.WriteString(": " + strings.Join(why, ", "))
	}
	if r.Error != "" {
		b.WriteString(": " + oneLine(r.Error, 300))
	}
	return b.String()
}

// auditSummary is an audit's one line.
func auditSummary(target string, findings []checks.Finding) string {
	n, bad := countChecks(findings)
	switch auditStatus(findings) {
	case reports.StatusPass:
		if n == 0 {
			return fmt.Sprintf("audit of %s passed: nothing to check", target)
		}
		return fmt.Sprintf("audit of %s passed: %d checks passed", target, n)
	case reports.StatusFail:
		return fmt.Sprintf("audit of %s FAILED: %d of %d checks did not pass", target, bad, n)
	}
	return fmt.Sprintf("audit of %s could not check everything: %d of %d checks did not pass", target, bad, n)
}

// countChecks counts findings, and those that do not pass (fail or error; warn passes).
func countChecks(findings []checks.Finding) (n, bad int) {
	for _, f := range findings {
		n++
		if failing(f) {
			bad++
		}
	}
	return n, bad
}

func failing(f checks.Finding) bool { return f.Status == checks.Fail || f.Status == checks.Error }

// failingLines are "name: status: message" for the findings that do not pass, failures first.
func failingLines(findings []checks.Finding) []string {
	var lines []string
	for _, want := range []checks.Status{checks.Fail, checks.Error} {
		for _, f := range findings {
			if f.Status == want {
				lines = append(lines, fmt.Sprintf("%s: %s: %s", f.Check, f.Status, oneLine(f.Message, 300)))
			}
		}
	}
	if len(lines) > maxListed {
		more := len(lines) - maxListed
		lines = append(lines[:maxListed], fmt.Sprintf("… and %d more", more))
	}
	return lines
}

func seconds(s float64) string {
	return checks.ShortDuration(time.Duration(s * float64(time.Second)).Round(time.Second))
}
