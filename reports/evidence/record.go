package evidence

import (
	"fmt"
	"regexp"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// SchemaVersion is the version of Record this build writes.
const SchemaVersion = 1

// Record kinds.
const (
	KindDrill    = "drill"
	KindAudit    = "audit"
	KindSnapshot = "snapshot"
)

// Record statuses: a run passed, found a failure, or could not check.
const (
	StatusPass  = "pass"
	StatusFail  = "fail"
	StatusError = "error"
)

// Record is one run's evidence: what ran, when, where, with which tool and configuration, against
// which objectives, and its full result. Seq and Prev chain it to the target's earlier records;
// Store.Append sets them.
type Record struct {
	SchemaVersion int       `json:"schemaVersion"`
	Kind          string    `json:"kind"`
	ID            string    `json:"id"`
	Target        string    `json:"target"`
	StartedAt     time.Time `json:"startedAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	// Status is pass, fail or error; an audit's is its worst finding (AuditStatus).
	Status string `json:"status"`
	// Where the run happened: host, cluster, namespace.
	Where        map[string]string `json:"where,omitempty"`
	ToolVersion  string            `json:"toolVersion"`
	ConfigDigest string            `json:"configDigest"`
	Objectives   Objectives        `json:"objectives"`

	Drill    *reports.DrillResult    `json:"drill,omitempty"`
	Audit    []checks.Finding        `json:"audit,omitempty"`
	Snapshot *reports.SnapshotResult `json:"snapshot,omitempty"`

	// Seq numbers a target's records from 1 with no gap.
	Seq int64 `json:"seq"`
	// Prev is the SHA-256 (hex) of the previous record's stored envelope bytes; "" for seq 1.
	Prev string `json:"prev"`
}

// Objectives are the target's objectives when the record was written.
type Objectives struct {
	RPOSeconds        float64 `json:"rpoSeconds"`
	RTOSeconds        float64 `json:"rtoSeconds"`
	DrillEverySeconds float64 `json:"drillEverySeconds"`
}

// AuditStatus is an audit record's status: its decisive finding (checks.Decisive), a warning
// counting as a pass.
func AuditStatus(fs []checks.Finding) string {
	switch checks.Worst(fs) {
	case checks.Fail:
		return StatusFail
	case checks.Error:
		return StatusError
	default:
		return StatusPass
	}
}

// safeName is what a target may be called to be a directory (or key segment) of its own.
var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (r *Record) validate() error {
	if !safeName.MatchString(r.Target) {
		return fmt.Errorf("target %q is not a valid record target (letters, digits, . _ -)", r.Target)
	}
	switch r.Kind {
	case KindDrill, KindAudit, KindSnapshot:
	default:
		return fmt.Errorf("record kind %q is not drill, audit or snapshot", r.Kind)
	}
	if r.ID == "" {
		return fmt.Errorf("record of %s has no id", r.Target)
	}
	switch r.Status {
	case StatusPass, StatusFail, StatusError:
	default:
		return fmt.Errorf("record status %q is not pass, fail or error", r.Status)
	}
	return nil
}

// fileID makes an id usable in a file name; the record keeps the id as it was.
func fileID(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
