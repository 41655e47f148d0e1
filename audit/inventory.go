package audit

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/firedrill/firedrill/checks"
)

// Families of backups: copies are matched by key only within a family.
const (
	// FamilyObjects are files and objects (dumps, archives): byte-identical across copies.
	FamilyObjects = "objects"
	// FamilySnapshots are snapshots (local repository, CSI): copies are matched by time.
	FamilySnapshots = "snapshots"
)

// SourceState is one configured source of a target, listed once per audit run and shared by
// the checks: its summary, or why it could not be read.
type SourceState struct {
	Name     string
	Location string
	// Where is a printable description (bucket and endpoint, directory), never credentials.
	Where   string
	Family  string
	Media   string
	Offsite bool
	Summary *Summary
	// Err is set when the source could not be listed (a *SourceError).
	Err error
	// Stat and Locker are set when the source supports them.
	Stat   Stater
	Locker BucketLocker
	// Reader streams a backup's bytes (copies.verify: read); Claims reads its sidecar files.
	Reader opener
	Claims ClaimReader
}

func (s *SourceState) evidence() map[string]any {
	ev := map[string]any{"source": s.Name, "where": s.Where}
	if s.Location != "" {
		ev["location"] = s.Location
	}
	return ev
}

// row returns the source's evidence row; an unreadable source is recorded in p as an error
// and reported with ok false.
func (s *SourceState) row(p *problems) (row map[string]any, ok bool) {
	row = s.evidence()
	if s.Err != nil {
		row["status"], row["error"], row["cause"] = "error", errLine(s.Err), CauseField(s.Err)
		p.unreadable(s.Err, "%s", unreadable(s))
		return row, false
	}
	return row, true
}

// problems collects what a check found, worst first, for a one-line message.
type problems struct {
	fails, errors, warns []string
	reasons              []string
	// causes are why things could not be read (CauseField), first seen first.
	causes []string
}

// unreadable records that something could not be read because of err: an error with reason
// unreadable and err's cause.
func (p *problems) unreadable(err error, format string, a ...any) {
	p.error(ReasonUnreadable, format, a...)
	if c := CauseField(err); c != "" && !slices.Contains(p.causes, c) {
		p.causes = append(p.causes, c)
	}
}

func (p *problems) fail(reason, format string, a ...any) {
	p.fails = append(p.fails, fmt.Sprintf(format, a...))
	p.addReason(reason)
}

func (p *problems) error(reason, format string, a ...any) {
	p.errors = append(p.errors, fmt.Sprintf(format, a...))
	p.addReason(reason)
}

func (p *problems) warn(reason, format string, a ...any) {
	p.warns = append(p.warns, fmt.Sprintf(format, a...))
	p.addReason(reason)
}

func (p *problems) addReason(r string) {
	for _, x := range p.reasons {
		if x == r {
			return
		}
	}
	p.reasons = append(p.reasons, r)
}

// message is the worst problems, joined, or ok when there are none.
func (p *problems) message(ok string) string {
	var parts []string
	parts = append(parts, p.fails...)
	parts = append(parts, p.errors...)
	parts = append(parts, p.warns...)
	if len(parts) == 0 {
		return ok
	}
	const show = 3
	if len(parts) > show {
		return strings.Join(parts[:show], "; ") + fmt.Sprintf("; (+%d more)", len(parts)-show)
	}
	return strings.Join(parts, "; ")
}

// unreadable describes a source that could not be read, with the cause first.
func unreadable(s *SourceState) string {
	return fmt.Sprintf("could not read %s (%s): %s", s.Name, s.Where, errLine(s.Err))
}

// errLine is an error on one line, with its cause (auth, network, permissions, ...) first.
func errLine(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	var se *SourceError
	if asSourceError(err, &se) {
		msg = strings.Join(strings.Fields(se.Err.Error()), " ")
	}
	return Cause(err) + ": " + msg
}

// age formats a duration for messages: 26h, 3d04h, 12m.
func age(d time.Duration) string {
	if d < 0 {
		return "in the future (" + (-d).Round(time.Second).String() + " ahead)"
	}
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// human formats a duration threshold compactly (31d, 24h, 90m).
func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// finding turns the problems into one finding: fail if anything failed, else error if
// something could not be read, else warn, else pass.
func (p *problems) finding(check string, ev checks.Evidence, ok string) checks.Finding {
	st := checks.Pass
	switch {
	case len(p.fails) > 0:
		st = checks.Fail
	case len(p.errors) > 0:
		st = checks.Error
	case len(p.warns) > 0:
		st = checks.Warn
	}
	if len(p.reasons) > 0 {
		ev["reasons"] = p.reasons
	}
	if len(p.causes) > 0 {
		ev["cause"], ev["causes"] = p.causes[0], p.causes
	}
	return checks.Finding{Check: check, Status: st, Message: p.message(ok), Evidence: ev}
}
