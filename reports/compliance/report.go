package compliance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// SchemaVersion of Report's JSON. Fields are added, never renamed.
const SchemaVersion = 1

// Report is the period report: what the evidence of [From, To) shows, per target.
type Report struct {
	SchemaVersion int       `json:"schemaVersion"`
	Title         string    `json:"title"`
	From          time.Time `json:"from"`
	// To is the end of the period, exclusive.
	To          time.Time `json:"to"`
	GeneratedAt time.Time `json:"generatedAt"`
	// Statement says what the report is, and what it is not.
	Statement string         `json:"statement"`
	Targets   []TargetReport `json:"targets"`
	Controls  []Control      `json:"controls"`
	// Provenance lists every record the report was built from.
	Provenance []RecordRef `json:"provenance"`
	// Verified is true when the evidence store was verified (signatures and chains) for the report.
	Verified bool `json:"verified"`
	// Digest is the SHA-256 (hex) of the report's canonical JSON with Digest left out (see
	// ComputeDigest): a copy of the report that was changed no longer matches it.
	Digest string `json:"digest,omitempty"`
}

// Objectives are a target's objectives, as configured (or as the newest record carried them).
type Objectives struct {
	RPOSeconds        float64 `json:"rpoSeconds"`
	RTOSeconds        float64 `json:"rtoSeconds"`
	DrillEverySeconds float64 `json:"drillEverySeconds"`
	CopyPolicy        string  `json:"copyPolicy,omitempty"`
}

// TargetReport is one target's part of the report.
type TargetReport struct {
	Name       string     `json:"name"`
	Engine     string     `json:"engine,omitempty"`
	Objectives Objectives `json:"objectives"`
	Summary    Summary    `json:"summary"`
	// Windows are the period cut into drillEvery-long windows, each with the drills it had.
	Windows []Window `json:"windows"`
	// MonthsWithoutDrill are the calendar months of the period (YYYY-MM) with no drill at all.
	MonthsWithoutDrill []string       `json:"monthsWithoutDrill"`
	Timeline           []DrillEntry   `json:"timeline"`
	Failures           []Failure      `json:"failures"`
	RPOBreaches        []Episode      `json:"rpoBreaches"`
	WALIncidents       []Episode      `json:"walIncidents"`
	Copies             []StatusPeriod `json:"copies"`
	Charts             Charts         `json:"charts"`
}

// Summary is the target's figures for the period.
type Summary struct {
	DrillsPerformed int `json:"drillsPerformed"`
	DrillsPassed    int `json:"drillsPassed"`
	// DrillsRequired is ceil(period / drillEvery).
	DrillsRequired int `json:"drillsRequired"`
	// MissedWindows counts the windows that ended with no drill in them.
	MissedWindows int `json:"missedWindows"`
	// PassRate is DrillsPassed / DrillsPerformed (0 when none was performed).
	PassRate float64 `json:"passRate"`
	// WorstRTOSeconds and MedianRTOSeconds are over the drills that measured an RTO.
	WorstRTOSeconds  float64 `json:"worstRtoSeconds"`
	MedianRTOSeconds float64 `json:"medianRtoSeconds"`
	RTOMissed        int     `json:"rtoMissed"`
	Audits           int     `json:"audits"`
	RPOBreaches      int     `json:"rpoBreaches"`
	// LongestRPOBreachSeconds is the longest breach, from the first audit that found the
	// newest backup too old to the first audit after it that did not (or the last one).
	LongestRPOBreachSeconds float64 `json:"longestRpoBreachSeconds"`
	WALIncidents            int     `json:"walIncidents"`
	// CopiesStatus is the 3-2-1 check's status at the period's last audit ("" when never checked).
	CopiesStatus string `json:"copiesStatus,omitempty"`
	// OpenExceptions counts failed drills with no passing drill after them in the period.
	OpenExceptions int `json:"openExceptions"`
}

// Window is one drillEvery-long stretch of the period.
type Window struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Drills int       `json:"drills"`
	Passed int       `json:"passed"`
	// Missed is true for a window that ended (before the report's time) with no drill.
	Missed bool `json:"missed"`
}

// EvidenceLink points at the evidence record behind an entry.
type EvidenceLink struct {
	Seq    int64  `json:"seq"`
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// DrillEntry is one drill on the timeline.
type DrillEntry struct {
	ID               string       `json:"id"`
	StartedAt        time.Time    `json:"startedAt"`
	FinishedAt       time.Time    `json:"finishedAt"`
	Status           string       `json:"status"`
	RTOSeconds       float64      `json:"rtoSeconds"`
	RTOTargetSeconds float64      `json:"rtoTargetSeconds"`
	RTOMet           bool         `json:"rtoMet"`
	Snapshot         string       `json:"snapshot,omitempty"`
	Evidence         EvidenceLink `json:"evidence"`
}

// Failure is a drill that failed (or could not complete), what it found, and what came after.
type Failure struct {
	Drill    DrillEntry `json:"drill"`
	Findings []Finding  `json:"findings"`
	Error    string     `json:"error,omitempty"`
	// NextPass is the first passing drill after it; nil while the exception is open.
	NextPass *DrillEntry `json:"nextPass,omitempty"`
	// RemediationSeconds is from the failed drill's end to the passing drill's end.
	RemediationSeconds float64 `json:"remediationSeconds,omitempty"`
}

// Finding is a check's non-passing result, as the evidence recorded it.
type Finding struct {
	Check   string `json:"check"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Episode is a run of consecutive audits that found the same kind of problem.
type Episode struct {
	From time.Time `json:"from"`
	// To is the first audit after it that no longer found it, or the last audit that did.
	To time.Time `json:"to"`
	// Ongoing is true when no later audit in the period found it resolved.
	Ongoing bool    `json:"ongoing"`
	Seconds float64 `json:"seconds"`
	Audits  int     `json:"audits"`
	// Worst is the worst status seen (warn or fail).
	Worst   string       `json:"worst"`
	Message string       `json:"message"`
	First   EvidenceLink `json:"first"`
}

// StatusPeriod is a stretch of time over which a check's status stayed the same.
type StatusPeriod struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Status  string    `json:"status"`
	Message string    `json:"message"`
	Audits  int       `json:"audits"`
}

// Point is one value of a chart series.
type Point struct {
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
	// Status is the drill's or the finding's status, for the point's colour.
	Status string `json:"status,omitempty"`
}

// Charts are the series a reader would rather look at than read.
type Charts struct {
	// RTOSeconds is each drill's RTO achieved; the objective is Objectives.RTOSeconds.
	RTOSeconds []Point `json:"rtoSeconds"`
	// BackupAgeSeconds is the oldest newest-good-backup age each audit saw; against the RPO.
	BackupAgeSeconds []Point `json:"backupAgeSeconds"`
	// BackupSizeBytes is the size of each snapshot taken (or restored by a drill).
	BackupSizeBytes []Point `json:"backupSizeBytes"`
}

// Control is one row of the control-mapping table.
type Control struct {
	Framework string `json:"framework"`
	Control   string `json:"control"`
	// Requirement paraphrases what the control asks for.
	Requirement string `json:"requirement"`
	// Evidence says which evidence in this report bears on it.
	Evidence string `json:"evidence"`
	// Records counts the records of that evidence in the period.
	Records int `json:"records"`
}

// RecordRef is one record the report was built from.
type RecordRef struct {
	Target string    `json:"target"`
	Kind   string    `json:"kind"`
	ID     string    `json:"id"`
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Path   string    `json:"path"`
	Digest string    `json:"digest"`
	KeyID  string    `json:"keyId,omitempty"`
	// Signature is verified, unsigned, unchecked (no verification ran) or failed.
	Signature string `json:"signature"`
	// Chain is verified, unchecked, broken (the first broken record) or after-break.
	Chain   string `json:"chain"`
	Problem string `json:"problem,omitempty"`
}

// ComputeDigest returns the SHA-256 (hex) of the report's canonical JSON without its digest:
// encoding/json's output of the report with Digest empty (struct fields in declaration order,
// map keys sorted, no indentation).
func (r *Report) ComputeDigest() (string, error) {
	c := *r
	c.Digest = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("while encoding the report for its digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
