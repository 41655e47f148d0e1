package checks

import (
	"fmt"
	"strings"
	"time"
)

// Status is the outcome of one check. The numeric values only name the statuses (and must not
// change: they index statusNames); which status decides a set of findings is written down once,
// in precedence below, and nowhere else compares statuses by number.
type Status int

const (
	// Pass: the check ran and found nothing wrong.
	Pass Status = iota
	// Warn: the check ran and found something worth a look that does not fail the drill.
	Warn
	// Fail: the check ran and found the restored copy unfit (corruption, a broken invariant, ...).
	Fail
	// Error: the check could not run (missing extension, lost connection, ...): nothing was proved.
	Error
)

var statusNames = [...]string{"pass", "warn", "fail", "error"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// MarshalText renders the status as its lowercase name in JSON.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a lowercase status name.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown status %q", b)
}

// Finding is one typed result of a check: what was checked, how it came out, a one-line message a
// person can act on, and the evidence (the query, the numbers, the threshold) behind it.
type Finding struct {
	Check    string   `json:"name"`
	Status   Status   `json:"status"`
	Message  string   `json:"message"`
	Evidence Evidence `json:"evidence,omitempty"`
	// Seconds is how long the check took; zero when not measured.
	Seconds float64 `json:"seconds,omitempty"`
}

// Evidence is the data behind a finding. Keys are stable names (query, threshold, failures, ...);
// values must be JSON-serialisable and must never hold secrets.
type Evidence map[string]any

// Passf, Warnf, Failf and Errorf build findings for check name.
func Passf(name string, ev Evidence, format string, a ...any) Finding {
	return Finding{Check: name, Status: Pass, Message: fmt.Sprintf(format, a...), Evidence: ev}
}

// Warnf builds a warning finding.
func Warnf(name string, ev Evidence, format string, a ...any) Finding {
	return Finding{Check: name, Status: Warn, Message: fmt.Sprintf(format, a...), Evidence: ev}
}

// Failf builds a failed finding.
func Failf(name string, ev Evidence, format string, a ...any) Finding {
	return Finding{Check: name, Status: Fail, Message: fmt.Sprintf(format, a...), Evidence: ev}
}

// Errorf builds a finding for a check that could not run.
func Errorf(name string, ev Evidence, format string, a ...any) Finding {
	return Finding{Check: name, Status: Error, Message: fmt.Sprintf(format, a...), Evidence: ev}
}

// precedence is the one statement of which status decides a set of findings, from the least to
// the most decisive: a proven failure (Fail) outranks "could not check" (Error), so a drill or an
// audit that proved the backup bad fails (exit 1) whatever else errored; Error outranks the
// statuses that pass (Warn, Pass). reports maps the result to a drill status and cmd/firedrill to
// an exit code, both from this order.
var precedence = [...]Status{Pass, Warn, Error, Fail}

func rank(s Status) int {
	for i, p := range precedence {
		if p == s {
			return i
		}
	}
	// A status this build does not know proved nothing: it counts as "could not check".
	return rank(Error)
}

// Outranks reports whether s decides the outcome over o (Fail over Error over Warn over Pass).
func (s Status) Outranks(o Status) bool { return rank(s) > rank(o) }

// Decisive returns the status that decides a set of statuses: Fail if any failed, whatever else
// errored; else Error if any could not check; else Warn if any warned; else Pass (also for none).
func Decisive(ss ...Status) Status {
	w := Pass
	for _, s := range ss {
		if s.Outranks(w) {
			w = s
		}
	}
	return w
}

// Worst returns the status that decides a set of findings (see Decisive), Pass for none.
func Worst(fs []Finding) Status {
	w := Pass
	for _, f := range fs {
		w = Decisive(w, f.Status)
	}
	return w
}

// ShortDuration formats a duration for messages: 1h, 10m, 1h30m, 2.5s (not 1h0m0s).
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
