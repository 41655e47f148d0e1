package compliance

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/reports/evidence"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func yearReport(t *testing.T, verify *VerifyReport) *Report {
	t.Helper()
	r, err := Build(t.Context(), map[string][]Stored{"orders": syntheticYear()}, verify,
		Options{From: yearFrom, To: yearTo, Now: func() time.Time { return yearNow }, Targets: []TargetPolicy{yearPol}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func verifiedOK() *VerifyReport {
	return &VerifyReport{Targets: []TargetVerify{{Target: "orders", Records: 49, OK: true, Signatures: true}}}
}

func TestSyntheticYear(t *testing.T) {
	r := yearReport(t, verifiedOK())
	if len(r.Targets) != 1 {
		t.Fatalf("targets = %d, want 1", len(r.Targets))
	}
	tr := r.Targets[0]
	s := tr.Summary
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"drills performed", s.DrillsPerformed, 12},
		{"drills passed", s.DrillsPassed, 11},
		{"drills required (ceil(365d/31d))", s.DrillsRequired, 12},
		{"missed windows", s.MissedWindows, 1},
		{"months without a drill", tr.MonthsWithoutDrill, []string{"2026-07"}},
		{"pass rate", s.PassRate, 0.9167},
		{"worst RTO", s.WorstRTOSeconds, 960.0},
		{"median RTO", s.MedianRTOSeconds, 765.0},
		{"audits", s.Audits, 24},
		{"RPO breaches", s.RPOBreaches, 1},
		{"longest RPO breach (May 1st to 16th)", s.LongestRPOBreachSeconds, (15 * 24 * time.Hour).Seconds()},
		{"WAL incidents", s.WALIncidents, 1},
		{"WAL incident's worst", tr.WALIncidents[0].Worst, "fail"},
		{"WAL incident's length", tr.WALIncidents[0].Seconds, (30 * 24 * time.Hour).Seconds()},
		{"3-2-1 stretches", len(tr.Copies), 3},
		{"3-2-1 now", s.CopiesStatus, "pass"},
		{"open exceptions", s.OpenExceptions, 0},
		{"failures", len(tr.Failures), 1},
		{"timeline", len(tr.Timeline), 12},
		{"snapshot sizes", len(tr.Charts.BackupSizeBytes), 12},
		{"backup ages", len(tr.Charts.BackupAgeSeconds), 24},
		{"RTO points", len(tr.Charts.RTOSeconds), 12},
		{"provenance (24 audits, 12 snapshots, 12 drills)", len(r.Provenance), 48},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !equal(c.got, c.want) {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
	missed := missedWindows(tr)
	if len(missed) != 1 || !strings.HasPrefix(missed[0], "2026-07-") {
		t.Errorf("missed windows = %v, want the one over July", missed)
	}
	f := tr.Failures[0]
	if f.Drill.StartedAt != time.Date(2026, 3, 15, 3, 0, 0, 0, time.UTC) || f.NextPass == nil ||
		f.NextPass.StartedAt != time.Date(2026, 3, 22, 3, 0, 0, 0, time.UTC) {
		t.Fatalf("failure = %+v, want March 15th's, remediated on March 22nd", f)
	}
	if f.RemediationSeconds != (7 * 24 * time.Hour).Seconds() {
		t.Errorf("remediation = %s, want a week", human(f.RemediationSeconds))
	}
	if len(f.Findings) != 1 || f.Findings[0].Check != "amcheck" || f.Findings[0].Status != "fail" {
		t.Errorf("failure findings = %+v, want the amcheck failure", f.Findings)
	}
	for _, p := range r.Provenance {
		if p.Signature != Verified || p.Chain != Verified {
			t.Fatalf("record %d: signature %s, chain %s; want both verified", p.Seq, p.Signature, p.Chain)
		}
	}
}

func equal(a, b any) bool {
	as, ok1 := a.([]string)
	bs, ok2 := b.([]string)
	if ok1 && ok2 {
		return slices.Equal(as, bs)
	}
	return a == b
}

// An open exception: a failure with no passing drill after it in the period.
func TestOpenException(t *testing.T) {
	recs := syntheticYear()
	c := &chain{target: "orders", recs: recs}
	c.add(drillRecord(time.Date(2026, 12, 20, 3, 0, 0, 0, time.UTC), 4000, true))
	r, err := Build(t.Context(), map[string][]Stored{"orders": c.recs}, nil,
		Options{From: yearFrom, To: yearTo, Now: func() time.Time { return yearNow }, Targets: []TargetPolicy{yearPol}})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Targets[0].Summary
	if s.OpenExceptions != 1 || s.RTOMissed != 1 || s.WorstRTOSeconds != 4000 {
		t.Errorf("open %d, RTO missed %d, worst %v; want 1, 1, 4000", s.OpenExceptions, s.RTOMissed, s.WorstRTOSeconds)
	}
	last := r.Targets[0].Failures[len(r.Targets[0].Failures)-1]
	if last.NextPass != nil || !slices.ContainsFunc(last.Findings, func(f Finding) bool { return f.Check == "rto" }) {
		t.Errorf("last failure = %+v, want open and naming the missed RTO", last)
	}
	if r.Provenance[0].Signature != Unchecked || r.Verified {
		t.Errorf("without verification: signature %q, verified %v; want unchecked, false", r.Provenance[0].Signature, r.Verified)
	}
}

func TestProvenanceAfterABrokenChain(t *testing.T) {
	v := &VerifyReport{Targets: []TargetVerify{{Target: "orders", Records: 60, Signatures: true,
		First: &evidence.Finding{Target: "orders", Seq: 5, Path: "x", Problem: "prev does not match record 4's digest"}}}}
	r := yearReport(t, v)
	for _, p := range r.Provenance {
		want := Verified
		switch {
		case p.Seq == 5:
			want = Broken
		case p.Seq > 5:
			want = AfterBreak
		}
		if p.Chain != want {
			t.Errorf("record %d: chain %s, want %s", p.Seq, p.Chain, want)
		}
	}
}

func TestDigest(t *testing.T) {
	r := yearReport(t, verifiedOK())
	d, err := r.ComputeDigest()
	if err != nil {
		t.Fatal(err)
	}
	if d != r.Digest || len(d) != 64 {
		t.Fatalf("digest %s, recomputed %s", r.Digest, d)
	}
	r.Targets[0].Summary.DrillsPassed++
	if d2, _ := r.ComputeDigest(); d2 == d {
		t.Error("changing the report left its digest unchanged")
	}
}

func TestBadPeriod(t *testing.T) {
	_, err := Build(t.Context(), nil, nil, Options{From: yearTo, To: yearFrom})
	if !errors.Is(err, ErrPeriod) {
		t.Fatalf("err = %v, want ErrPeriod", err)
	}
}

func TestGolden(t *testing.T) {
	r := yearReport(t, verifiedOK())
	for _, c := range []struct {
		file   string
		format Format
	}{{"year.json", FormatJSON}, {"year.md", FormatMarkdown}} {
		t.Run(c.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(t.Context(), &b, r, c.format); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join("testdata", c.file)
			if *update {
				if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", c.file, b.String())
			}
		})
	}
}

// The HTML is self-contained and keeps untrusted text as text.
func TestHTMLSelfContained(t *testing.T) {
	recs := syntheticYear()
	for i := range recs {
		if d := recs[i].Record.Drill; d != nil && d.Status == "fail" {
			d.Checks[1].Message = `<script>alert(1)</script><img src=http://evil.example/x>`
		}
	}
	r, err := Build(t.Context(), map[string][]Stored{"orders": recs}, nil, Options{From: yearFrom, To: yearTo, Now: func() time.Time { return yearNow }, Targets: []TargetPolicy{yearPol}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"<script", "<img", "<link", "@import", `src="`, `href="http`, "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if n := strings.Count(page, "<svg"); n != 3 {
		t.Errorf("%d charts, want 3", n)
	}
	for _, want := range []string{"<title>" + r.Title + "</title>", "@media print", "2026-07", r.Digest, "&lt;script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, yearReport(t, nil)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"12/12", "92%", "2026-07"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestSparkline(t *testing.T) {
	for _, c := range []struct {
		values  []float64
		ceiling float64
		want    string
	}{
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8}, 0, "▁▂▃▄▅▆▇█"},
		{[]float64{100, 200}, 800, "▁▂"},
		{[]float64{0, 10}, 0, " █"},
		{nil, 10, ""},
	} {
		if got := Sparkline(c.values, c.ceiling); got != c.want {
			t.Errorf("Sparkline(%v, %v) = %q, want %q", c.values, c.ceiling, got, c.want)
		}
	}
}

func TestHistoryFromEvidence(t *testing.T) {
	es := FromEvidence(syntheticYear())
	if len(es) != 12 || es[2].Status != "fail" || es[0].RTOTargetSeconds != 3600 || es[0].Source != "evidence" {
		t.Fatalf("entries = %+v", es)
	}
	var b bytes.Buffer
	if err := WriteHistory(&b, [][]HistoryEntry{es}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "orders RTO trend, oldest to newest: ▆▆▆▆▆▇▇▇████  (slowest 16m, objective 1h") {
		t.Errorf("history:\n%s", b.String())
	}
}
