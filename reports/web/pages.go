package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/render"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are parsed once: each page is the layout plus its own "title" and "content".
var pages = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, name := range []string{"status", "drill", "notfound"} {
		m[name] = template.Must(template.New("layout.html").ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return m
}()

// contentSecurityPolicy allows the inline stylesheet and nothing else: no script runs even if
// an escaping bug let markup through.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// render executes a page into a buffer first, so a template error is a clean 500, not half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, code int, page string, data any) {
	var buf bytes.Buffer
	if err := pages[page].Execute(&buf, data); err != nil {
		s.log.ErrorContext(r.Context(), "while rendering a page", "page", page, "err", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// stamp is a moment as the pages show it: UTC RFC 3339, and how long ago (or ahead) it is.
type stamp struct {
	UTC string
	Rel string
}

func newStamp(t, now time.Time) *stamp {
	if t.IsZero() {
		return nil
	}
	d := now.Sub(t)
	rel := "now"
	switch {
	case d >= time.Second:
		rel = relative(d) + " ago"
	case d <= -time.Second:
		rel = "in " + relative(-d)
	}
	return &stamp{UTC: t.UTC().Format(time.RFC3339), Rel: rel}
}

func stampPtr(t *time.Time, now time.Time) *stamp {
	if t == nil {
		return nil
	}
	return newStamp(*t, now)
}

// relative is a coarse duration for "5m ago": one unit, two past an hour.
func relative(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	days, h := int(d.Hours())/24, int(d.Hours())%24
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%02dh", days, h)
}

// badge is a status as a coloured word; Class is one of pass, warn, fail, error, none.
type badge struct {
	Class string
	Text  string
}

func checkBadge(s checks.Status) badge { return badge{Class: s.String(), Text: s.String()} }

func none(text string) badge { return badge{Class: "none", Text: text} }

func drillBadge(s reports.Status) badge {
	switch s {
	case reports.StatusPass, reports.StatusFail, reports.StatusError:
		return badge{Class: string(s), Text: string(s)}
	}
	return none(string(s))
}

func drillHref(root, target, id string) string {
	return root + "targets/" + url.PathEscape(target) + "/drills/" + url.PathEscape(id)
}

// --- the status page ----------------------------------------------------------------------------

type statusPage struct {
	Root         string
	GeneratedAt  *stamp
	ConfigFile   string
	ConfigLoaded *stamp
	ReloadError  string
	Targets      []targetRow
}

type targetRow struct {
	Name, Engine, Running string
	RPO                   badge
	BackupAge, RPOTarget  string
	RTO                   badge
	RTOActual, RTOTarget  string
	LastDrill             *drillLink
	NextDrill             *stamp
	Copies                badge
	CopiesText            string
	Audit                 badge
	LastAudit             *stamp
	// Attention are the findings that did not pass, shown under the audit status.
	Attention []findingRow
	Findings  int
}

type drillLink struct {
	Href, ID string
	Status   badge
	Finished *stamp
}

func statusView(st *reports.ServeStatus, now time.Time) statusPage {
	p := statusPage{
		Root:         "./",
		GeneratedAt:  newStamp(st.GeneratedAt, now),
		ConfigFile:   st.ConfigFile,
		ConfigLoaded: newStamp(st.ConfigLoadedAt, now),
		ReloadError:  st.ReloadError,
	}
	for _, t := range st.Targets {
		p.Targets = append(p.Targets, targetView(t, now))
	}
	return p
}

func targetView(t reports.TargetStatus, now time.Time) targetRow {
	row := targetRow{Name: t.Target, Engine: t.Engine, Running: t.Running,
		RPOTarget: render.Dur(t.RPOSeconds), RTOTarget: render.Dur(t.RTOSeconds),
		NextDrill: stampPtr(t.NextDrill, now), LastAudit: stampPtr(t.LastAudit, now), Findings: len(t.Findings)}

	// A status is only meaningful once there was an audit (RPO, copies) or a drill (RTO):
	// checks.Pass is the zero value, so "not yet" is told by LastAudit and LastDrill.
	audited := t.LastAudit != nil
	row.RPO, row.Audit, row.Copies = none("not audited"), none("not audited"), none("not audited")
	if audited {
		row.RPO = none("no backup-age check")
		if t.RPOStatus != nil {
			row.RPO = checkBadge(*t.RPOStatus)
		}
		row.Audit = checkBadge(checks.Worst(t.Findings))
		row.Copies = none("not checked")
	}
	row.BackupAge = "unknown"
	if t.BackupAgeSeconds != nil {
		row.BackupAge = render.Dur(*t.BackupAgeSeconds)
	}
	if t.Copies != nil {
		row.CopiesText = fmt.Sprint(*t.Copies)
		if t.CopiesRequired != nil {
			row.CopiesText += fmt.Sprintf(" of %d", *t.CopiesRequired)
			if *t.Copies >= *t.CopiesRequired {
				row.Copies = badge{Class: "pass", Text: "enough"}
			} else {
				row.Copies = badge{Class: "fail", Text: "too few"}
			}
		} else {
			row.Copies = none("no rule")
		}
	}
	for _, f := range t.Findings {
		if f.Status != checks.Pass {
			row.Attention = append(row.Attention, findingView(f))
		}
	}

	row.RTO = none("never drilled")
	if d := t.LastDrill; d != nil {
		if t.RTOStatus != nil {
			row.RTO = checkBadge(*t.RTOStatus)
		}
		row.RTOActual = render.Dur(d.RTOSeconds)
		if !d.RTOMet && d.RTOSeconds == 0 {
			row.RTOActual = "not reached"
		}
		row.LastDrill = &drillLink{Href: drillHref("./", t.Target, d.ID), ID: d.ID,
			Status: drillBadge(d.Status), Finished: newStamp(d.FinishedAt, now)}
	}
	return row
}

// --- the drill page -----------------------------------------------------------------------------

type drillPage struct {
	Root, Target, ID, Engine string
	Status                   badge
	Error                    string
	Interrupted              bool
	Started, Finished        *stamp
	Duration                 string
	Snapshot                 *snapshotView
	RecoveryPoint            *stamp
	RecoveryPointSource      string
	RTO                      badge
	RTOActual, RTOTarget     string
	Runtime                  string
	Phases                   []phaseRow
	Findings                 []findingRow
	Milestones               []milestoneRow
	Notes                    []string
}

type snapshotView struct {
	ID, Driver, EngineVersion, Size, Age string
	TakenAt                              *stamp
}

type phaseRow struct {
	Name, Duration  string
	CountsTowardRTO bool
}

type findingRow struct {
	Check    string
	Status   badge
	Message  string
	Duration string
	Evidence string // indented JSON; empty when none
}

type milestoneRow struct {
	Name, Source string
	At           *stamp
}

func findingView(f checks.Finding) findingRow {
	row := findingRow{Check: f.Check, Status: checkBadge(f.Status), Message: f.Message}
	if f.Seconds > 0 {
		row.Duration = render.Dur(f.Seconds)
	}
	if len(f.Evidence) > 0 {
		b, err := json.MarshalIndent(f.Evidence, "", "  ")
		if err != nil {
			b = []byte(fmt.Sprintf("evidence not shown: %s", err))
		}
		row.Evidence = string(b)
	}
	return row
}

func drillView(d *reports.DrillResult, now time.Time) drillPage {
	p := drillPage{Root: "../../../", Target: d.Target, ID: d.ID, Engine: d.Engine,
		Status: drillBadge(d.Status), Error: d.Error, Interrupted: d.Interrupted,
		Started: newStamp(d.StartedAt, now), Finished: newStamp(d.FinishedAt, now),
		RecoveryPoint: stampPtr(d.RecoveryPoint, now), RecoveryPointSource: d.RecoveryPointSource,
		RTOActual: render.Dur(d.RTO.ActualSeconds), RTOTarget: render.Dur(d.RTO.TargetSeconds), Notes: d.Notes}
	if !d.StartedAt.IsZero() && d.FinishedAt.After(d.StartedAt) {
		p.Duration = render.Dur(d.FinishedAt.Sub(d.StartedAt).Seconds())
	}
	switch {
	case d.RTO.Met:
		p.RTO = badge{Class: "pass", Text: "met"}
	case d.RTO.ActualSeconds == 0:
		p.RTO, p.RTOActual = badge{Class: "fail", Text: "not reached"}, "not measured"
	default:
		p.RTO = badge{Class: "fail", Text: "missed"}
	}
	if s := d.Snapshot; s != nil {
		p.Snapshot = &snapshotView{ID: s.ID, Driver: s.Driver, EngineVersion: s.EngineVersion,
			Age: render.Dur(s.AgeSeconds), TakenAt: newStamp(s.TakenAt, now)}
		if s.SizeBytes > 0 {
			p.Snapshot.Size = reports.HumanBytes(s.SizeBytes)
		}
	}
	if rt := d.Runtime; rt != nil {
		p.Runtime = rt.Kind
		if rt.Pod != "" {
			p.Runtime += fmt.Sprintf(" (pod %s/%s", rt.Namespace, rt.Pod)
			if rt.Node != "" {
				p.Runtime += " on " + rt.Node
			}
			p.Runtime += ")"
		}
		if rt.EngineVersion != "" {
			p.Runtime += ", " + rt.EngineVersion
		}
	}
	for _, ph := range d.Phases {
		p.Phases = append(p.Phases, phaseRow{Name: ph.Name, Duration: render.Dur(ph.Seconds), CountsTowardRTO: ph.CountsTowardRTO})
	}
	for _, f := range d.Checks {
		p.Findings = append(p.Findings, findingView(f))
	}
	for _, m := range d.Milestones {
		p.Milestones = append(p.Milestones, milestoneRow{Name: m.Name, Source: m.Source, At: newStamp(m.At, now)})
	}
	return p
}

type notFoundView struct {
	Root, Target, ID string
}
