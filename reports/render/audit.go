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
	cols := Columns("TARGET", "CHECK", "STATUS", "REASON")
	cols[0].Shrink = Middle // a target name is an id
	return Fit(w, cols, out)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
