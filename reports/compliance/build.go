package compliance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports/evidence"
)

// TargetPolicy is a target's objectives as configured.
type TargetPolicy struct {
	Name       string
	Engine     string
	RPO        time.Duration
	RTO        time.Duration
	DrillEvery time.Duration
	// CopyPolicy describes the copy rule in words ("3 copies, 2 media, 1 offsite, 1 immutable").
	CopyPolicy string
}

// Options say which period and targets the report covers.
type Options struct {
	// From and To bound the period: From inclusive, To exclusive.
	From, To time.Time
	// Now is the report's clock: windows that end after it are not due yet.
	Now func() time.Time
	// Targets are reported in this order; empty reports every target with records.
	Targets []TargetPolicy
	// Title overrides the default title.
	Title string
}

// ErrPeriod is returned for a period that ends before it starts.
var ErrPeriod = errors.New("the period's end is not after its start")

// Statement is what the report says about itself.
const Statement = "This report summarises firedrill's evidence records for the period. It states what " +
	"the records show; it is evidence for an assessment, not a certification or an attestation of " +
	"compliance with any framework."

// Build makes the report of the period from the records of each target (any order, any period:
// those outside [From, To) are left out) and, when the store was verified, what verification found.
func Build(ctx context.Context, records map[string][]Stored, verify *VerifyReport, o Options) (*Report, error) {
	if !o.To.After(o.From) {
		return nil, fmt.Errorf("while building the report of %s to %s: %w", o.From.Format(time.DateOnly), o.To.Format(time.DateOnly), ErrPeriod)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	r := &Report{
		SchemaVersion: SchemaVersion,
		Title:         o.Title,
		From:          o.From.UTC(),
		To:            o.To.UTC(),
		GeneratedAt:   now().UTC(),
		Statement:     Statement,
		Verified:      verify != nil,
	}
	if r.Title == "" {
		r.Title = fmt.Sprintf("Restore testing evidence, %s to %s", o.From.Format(time.DateOnly), o.To.Add(-time.Nanosecond).Format(time.DateOnly))
	}
	policies := o.Targets
	if len(policies) == 0 {
		names := make([]string, 0, len(records))
		for name := range records {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, n := range names {
			policies = append(policies, TargetPolicy{Name: n})
		}
	}
	verdicts := verdictsOf(verify)
	var all []Stored
	for _, p := range policies {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in := inPeriod(records[p.Name], r.From, r.To)
		all = append(all, in...)
		r.Targets = append(r.Targets, buildTarget(p, in, r.From, r.To, r.GeneratedAt))
		for _, s := range in {
			r.Provenance = append(r.Provenance, refOf(s, verdicts[s.Record.Target]))
		}
	}
	r.Controls = controls(all)
	d, err := r.ComputeDigest()
	if err != nil {
		return nil, err
	}
	r.Digest = d
	return r, nil
}

// inPeriod returns the records that started in [from, to), oldest first.
func inPeriod(rs []Stored, from, to time.Time) []Stored {
	var out []Stored
	for _, s := range rs {
		if at := s.Record.StartedAt; !at.Before(from) && at.Before(to) {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Record, out[j].Record
		if !a.StartedAt.Equal(b.StartedAt) {
			return a.StartedAt.Before(b.StartedAt)
		}
		return a.Seq < b.Seq
	})
	return out
}

func buildTarget(p TargetPolicy, rs []Stored, from, to, now time.Time) TargetReport {
	t := TargetReport{Name: p.Name, Engine: p.Engine, Objectives: objectives(p, rs),
		MonthsWithoutDrill: []string{}, Timeline: []DrillEntry{}, Failures: []Failure{},
		RPOBreaches: []Episode{}, WALIncidents: []Episode{}, Copies: []StatusPeriod{},
		Charts: Charts{RTOSeconds: []Point{}, BackupAgeSeconds: []Point{}, BackupSizeBytes: []Point{}}}
	var drills []Stored
	for _, s := range rs {
		rec := s.Record
		switch rec.Kind {
		case evidence.KindDrill:
			drills = append(drills, s)
			if t.Engine == "" && rec.Drill != nil {
				t.Engine = rec.Drill.Engine
			}
		case evidence.KindAudit:
			t.Summary.Audits++
		case evidence.KindSnapshot:
			if sn := rec.Snapshot; sn != nil && sn.Snapshot != nil && !sn.Snapshot.SizeUnknown {
				t.Charts.BackupSizeBytes = append(t.Charts.BackupSizeBytes, Point{At: sn.Snapshot.TakenAt.UTC(), Value: float64(sn.Snapshot.SizeBytes), Status: rec.Status})
			}
		}
	}
	t.Timeline, t.Failures = drillTimeline(drills, t.Objectives.RTOSeconds)
	for _, d := range t.Timeline {
		if d.RTOSeconds > 0 {
			t.Charts.RTOSeconds = append(t.Charts.RTOSeconds, Point{At: d.StartedAt, Value: d.RTOSeconds, Status: d.Status})
		}
	}
	if len(t.Charts.BackupSizeBytes) == 0 {
		for _, s := range drills {
			if d := s.Record.Drill; d != nil && d.Snapshot != nil && d.Snapshot.SizeBytes > 0 {
				t.Charts.BackupSizeBytes = append(t.Charts.BackupSizeBytes, Point{At: d.Snapshot.TakenAt.UTC(), Value: float64(d.Snapshot.SizeBytes)})
			}
		}
	}
	t.Windows = windows(t.Timeline, from, to, now, time.Duration(t.Objectives.DrillEverySeconds*float64(time.Second)))
	t.MonthsWithoutDrill = monthsWithout(t.Timeline, from, to, now)
	audits(&t, rs)
	summarise(&t)
	return t
}

// objectives are the policy's, where it sets them, else the newest record's.
func objectives(p TargetPolicy, rs []Stored) Objectives {
	o := Objectives{RPOSeconds: p.RPO.Seconds(), RTOSeconds: p.RTO.Seconds(), DrillEverySeconds: p.DrillEvery.Seconds(), CopyPolicy: p.CopyPolicy}
	for i := len(rs) - 1; i >= 0; i-- {
		ro := rs[i].Record.Objectives
		if o.RPOSeconds == 0 {
			o.RPOSeconds = ro.RPOSeconds
		}
		if o.RTOSeconds == 0 {
			o.RTOSeconds = ro.RTOSeconds
		}
		if o.DrillEverySeconds == 0 {
			o.DrillEverySeconds = ro.DrillEverySeconds
		}
	}
	if o.DrillEverySeconds == 0 {
		o.DrillEverySeconds = DefaultDrillEvery.Seconds()
	}
	return o
}

func link(s Stored) EvidenceLink {
	return EvidenceLink{Seq: s.Record.Seq, Path: s.Path, Digest: s.Digest}
}

func entry(s Stored, rtoTarget float64) DrillEntry {
	rec := s.Record
	e := DrillEntry{ID: rec.ID, StartedAt: rec.StartedAt.UTC(), FinishedAt: rec.FinishedAt.UTC(), Status: rec.Status,
		RTOTargetSeconds: rtoTarget, Evidence: link(s)}
	if d := rec.Drill; d != nil {
		e.RTOSeconds, e.RTOMet = d.RTO.ActualSeconds, d.RTO.Met
		if d.RTO.TargetSeconds > 0 {
			e.RTOTargetSeconds = d.RTO.TargetSeconds
		}
		if d.Snapshot != nil {
			e.Snapshot = d.Snapshot.ID
		}
	}
	return e
}

// drillTimeline lists every drill, and every failure with the first passing drill after it.
func drillTimeline(drills []Stored, rtoTarget float64) ([]DrillEntry, []Failure) {
	tl := make([]DrillEntry, 0, len(drills))
	for _, s := range drills {
		tl = append(tl, entry(s, rtoTarget))
	}
	fails := []Failure{}
	for i, s := range drills {
		if tl[i].Status == evidence.StatusPass {
			continue
		}
		f := Failure{Drill: tl[i], Findings: []Finding{}}
		if d := s.Record.Drill; d != nil {
			f.Error = d.Error
			for _, c := range d.Checks {
				if c.Status != checks.Pass {
					f.Findings = append(f.Findings, Finding{Check: c.Check, Status: c.Status.String(), Message: c.Message})
				}
			}
			if !d.RTO.Met && d.RTO.ActualSeconds > 0 {
				f.Findings = append(f.Findings, Finding{Check: "rto", Status: "fail",
					Message: fmt.Sprintf("RTO %s achieved, objective %s", seconds(d.RTO.ActualSeconds), seconds(e(d.RTO.TargetSeconds, rtoTarget)))})
			}
		}
		for j := i + 1; j < len(tl); j++ {
			if tl[j].Status == evidence.StatusPass {
				next := tl[j]
				f.NextPass = &next
				f.RemediationSeconds = next.FinishedAt.Sub(tl[i].FinishedAt).Seconds()
				break
			}
		}
		fails = append(fails, f)
	}
	return tl, fails
}

// e returns a, or b when a is zero.
func e(a, b float64) float64 {
	if a != 0 {
		return a
	}
	return b
}

// windows cuts [from, to) into drillEvery-long windows (the last one shorter).
func windows(tl []DrillEntry, from, to, now time.Time, every time.Duration) []Window {
	if every <= 0 {
		return []Window{}
	}
	var out []Window
	for start := from; start.Before(to); start = start.Add(every) {
		end := start.Add(every)
		if end.After(to) {
			end = to
		}
		w := Window{From: start, To: end}
		for _, d := range tl {
			if !d.StartedAt.Before(w.From) && d.StartedAt.Before(w.To) {
				w.Drills++
				if d.Status == evidence.StatusPass {
					w.Passed++
				}
			}
		}
		w.Missed = w.Drills == 0 && !w.To.After(now)
		out = append(out, w)
	}
	return out
}

// monthsWithout lists the calendar months of [from, to) that have begun by now and had no drill.
func monthsWithout(tl []DrillEntry, from, to, now time.Time) []string {
	out := []string{}
	m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
	for ; m.Before(to); m = m.AddDate(0, 1, 0) {
		end := m.AddDate(0, 1, 0)
		if end.After(now) && !m.Before(now) {
			break
		}
		if !slices.ContainsFunc(tl, func(d DrillEntry) bool { return !d.StartedAt.Before(m) && d.StartedAt.Before(end) }) {
			out = append(out, m.Format("2006-01"))
		}
	}
	return out
}

func summarise(t *TargetReport) {
	s := &t.Summary
	var rtos []float64
	for _, d := range t.Timeline {
		s.DrillsPerformed++
		if d.Status == evidence.StatusPass {
			s.DrillsPassed++
		}
		if d.RTOSeconds > 0 {
			rtos = append(rtos, d.RTOSeconds)
			if !d.RTOMet {
				s.RTOMissed++
			}
		}
	}
	if s.DrillsPerformed > 0 {
		s.PassRate = math.Round(float64(s.DrillsPassed)/float64(s.DrillsPerformed)*10000) / 10000
	}
	if len(rtos) > 0 {
		slices.Sort(rtos)
		s.WorstRTOSeconds = rtos[len(rtos)-1]
		if n := len(rtos); n%2 == 1 {
			s.MedianRTOSeconds = rtos[n/2]
		} else {
			s.MedianRTOSeconds = (rtos[n/2-1] + rtos[n/2]) / 2
		}
	}
	s.DrillsRequired = len(t.Windows) // ceil(period / drillEvery): the last window may be short
	for _, w := range t.Windows {
		if w.Missed {
			s.MissedWindows++
		}
	}
	for _, f := range t.Failures {
		if f.NextPass == nil {
			s.OpenExceptions++
		}
	}
	s.RPOBreaches = len(t.RPOBreaches)
	for _, b := range t.RPOBreaches {
		s.LongestRPOBreachSeconds = max(s.LongestRPOBreachSeconds, b.Seconds)
	}
	s.WALIncidents = len(t.WALIncidents)
	if n := len(t.Copies); n > 0 {
		s.CopiesStatus = t.Copies[n-1].Status
	}
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// DefaultDrillEvery is objectives.drillEvery's default (audit/policy.DefaultDrillEvery: a test
// in audit/policy keeps the two equal).
const DefaultDrillEvery = 31 * 24 * time.Hour
