package render

import (
	"io"
	"strings"

	"github.com/firedrill/firedrill/checks"
)

// AuditRow is one target × check line of an audit report.
type AuditRow struct {
	Target  string
	Finding checks.Finding
}

// Audit writes an audit report for people: one row per target and check, with its status and
// a one-line reason.
func Audit(w io.Writer, rows []AuditRow) error {
	out := make([][]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, []string{r.Target, r.Finding.Check, strings.ToUpper(r.Finding.Status.String()), oneLine(r.Finding.Message)})
	}
	return Table(w, []string{"TARGET", "CHECK", "STATUS", "REASON"}, out)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
