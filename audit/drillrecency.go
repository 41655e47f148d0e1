package audit

import (
	"context"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// Reasons the drill-recency check names.
const (
	ReasonNoDrill        = "no-drill"
	ReasonNoPassingDrill = "no-passing-drill"
	ReasonDrillTooOld    = "drill-too-old"
	ReasonRTOMissed      = "rto-missed"
	ReasonLastDrillFail  = "last-drill-failed"
)

// DrillHistory is where drill results are kept (reports/history.Store).
type DrillHistory interface {
	// List returns a target's drill results, newest first.
	List(ctx context.Context, target string) ([]reports.DrillResult, error)
}

// CheckDrillRecency holds a target's drill history against objectives: the last passing drill
// must be younger than every, and the last drill must have met its RTO.
func CheckDrillRecency(ctx context.Context, h DrillHistory, target string, every time.Duration, now time.Time) checks.Finding {
	ev := checks.Evidence{"drillEvery": every.String(), "now": now}
	results, err := h.List(ctx, target)
	if err != nil {
		ev["error"] = errLine(err)
		ev["reasons"] = []string{ReasonUnreadable}
		ev["cause"] = CauseField(err)
		return checks.Errorf(policy.CheckDrillRecency, ev, "could not read the drill history: %s", errLine(err))
	}
	var p problems
	ev["drills"] = len(results)
	if len(results) == 0 {
		p.fail(ReasonNoDrill, "no drill recorded (run 'firedrill drill'; drills every %s)", human(every))
		return p.finding(policy.CheckDrillRecency, ev, "")
	}
	last := results[0]
	ev["lastDrill"] = map[string]any{"id": last.ID, "status": last.Status, "startedAt": last.StartedAt, "rto": last.RTO}
	var lastPass *reports.DrillResult
	for i := range results {
		if results[i].Status == reports.StatusPass {
			lastPass = &results[i]
			break
		}
	}
	okMsg := ""
	if lastPass == nil {
		p.fail(ReasonNoPassingDrill, "none of %d drills passed (last: %s, %s ago)", len(results), last.Status, age(now.Sub(drillTime(last))))
	} else {
		a := now.Sub(drillTime(*lastPass))
		ev["lastPassingDrill"] = map[string]any{"id": lastPass.ID, "finishedAt": drillTime(*lastPass), "ageSeconds": a.Seconds()}
		if a > every {
			p.fail(ReasonDrillTooOld, "last passing drill %s was %s ago (drills every %s)", lastPass.ID, age(a), human(every))
		}
		okMsg = "last passing drill " + age(a) + " ago (every " + human(every) + ")"
	}
	// A drill that could not run measured no RTO: only completed drills are judged on it.
	if last.Status != reports.StatusError && last.RTO.TargetSeconds > 0 && !last.RTO.Met {
		p.fail(ReasonRTOMissed, "last drill %s missed the RTO: %s to verified, objective %s", last.ID,
			rtoDur(last.RTO.ActualSeconds), rtoDur(last.RTO.TargetSeconds))
	} else if last.Status == reports.StatusFail && lastPass != nil && lastPass.ID != last.ID {
		p.warn(ReasonLastDrillFail, "last drill %s failed (%s ago)", last.ID, age(now.Sub(drillTime(last))))
	} else if last.Status == reports.StatusError && lastPass != nil && lastPass.ID != last.ID {
		p.warn(ReasonLastDrillFail, "last drill %s could not run (%s ago)", last.ID, age(now.Sub(drillTime(last))))
	}
	if last.RTO.Met {
		okMsg += "; RTO met"
	}
	return p.finding(policy.CheckDrillRecency, ev, okMsg)
}

// drillTime is when a drill finished (when it started, if it never recorded a finish).
func drillTime(r reports.DrillResult) time.Time {
	if !r.FinishedAt.IsZero() {
		return r.FinishedAt
	}
	return r.StartedAt
}

// rtoDur formats an RTO in seconds precisely enough to compare: an objective of 1ms must not
// read "0s", nor a 1.4 s restore against a 1 s objective "1s".
func rtoDur(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return age(d)
}
