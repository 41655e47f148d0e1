package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sampleReport has a passing, a failing, a warning and an unreadable finding, and a target whose
// every check was skipped.
func sampleReport(t *testing.T) *Report {
	now := day(3)
	fresh := state("primary", Backup{Key: "d1.dump", Time: day(2), Size: 4096}, Backup{Key: "d2.dump", Time: day(3).Add(-2 * 3600e9), Size: 4096})
	broken := &SourceState{Name: "offsite", Where: "s3://offsite/ at http://127.0.0.1:9 (eu-west-1)",
		Err: &SourceError{Source: "offsite", Where: "s3://offsite/", Op: "listing", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}}
	h := fakeHistory{results: []reports.DrillResult{{ID: "b", Status: reports.StatusFail, StartedAt: day(2), FinishedAt: day(2).Add(300e9),
		RTO: reports.RTO{TargetSeconds: 600, ActualSeconds: 900}}}}
	size := policy.SizeAudit{MinBytes: 1, MaxDrop: 0.5, MaxGrowth: 1, History: 3}
	grown := state("primary", Backup{Key: "d1.dump", Time: day(1), Size: 1000}, Backup{Key: "d2.dump", Time: day(2), Size: 3000})
	return &Report{SchemaVersion: ReportSchemaVersion, GeneratedAt: now, Targets: []TargetReport{
		{Target: "orders", Findings: []checks.Finding{
			CheckBackupAge([]*SourceState{fresh}, 24*3600e9, now),
			CheckBackupSize([]*SourceState{grown}, size),
			CheckBackupAge([]*SourceState{broken}, 24*3600e9, now),
			CheckDrillRecency(t.Context(), h, "orders", 31*24*3600e9, now),
		}},
		{Target: "skipped"},
	}}
}

// The JSON machines read: every finding carries target, check, status, message, reasons and
// evidence; arrays are never null; the golden file is the documented example.
func TestReportJSON(t *testing.T) {
	rep := sampleReport(t)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./audit -run TestReportJSON -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("report JSON differs from %s (run with -update if the change is intended; only add fields):\n%s", golden, buf.String())
	}

	var generic struct {
		SchemaVersion int `json:"schemaVersion"`
		Targets       []struct {
			Target   string           `json:"target"`
			Findings []map[string]any `json:"findings"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(buf.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	if generic.SchemaVersion != 1 || len(generic.Targets) != 2 {
		t.Fatalf("schemaVersion %d, %d targets", generic.SchemaVersion, len(generic.Targets))
	}
	if generic.Targets[1].Findings == nil {
		t.Errorf("a target without findings has findings: null, want []")
	}
	statuses := map[string]bool{}
	for _, f := range generic.Targets[0].Findings {
		for _, k := range []string{"target", "check", "name", "status", "message", "reasons", "evidence"} {
			if _, ok := f[k]; !ok {
				t.Errorf("finding %v has no %q", f["check"], k)
			}
		}
		if f["target"] != "orders" || f["check"] != f["name"] {
			t.Errorf("finding target %v check %v name %v", f["target"], f["check"], f["name"])
		}
		if _, ok := f["reasons"].([]any); !ok {
			t.Errorf("%v: reasons %#v is not an array", f["check"], f["reasons"])
		}
		if _, ok := f["evidence"].(map[string]any); !ok {
			t.Errorf("%v: evidence %#v is not an object", f["check"], f["evidence"])
		}
		statuses[f["status"].(string)] = true
		if f["status"] == "pass" && len(f["reasons"].([]any)) != 0 {
			t.Errorf("%v passed with reasons %v", f["check"], f["reasons"])
		}
		if f["status"] != "pass" && len(f["reasons"].([]any)) == 0 {
			t.Errorf("%v is %v with no reason code", f["check"], f["status"])
		}
	}
	for _, s := range []string{"pass", "warn", "fail", "error"} {
		if !statuses[s] {
			t.Errorf("the sample has no %s finding", s)
		}
	}

	// The added fields do not get in the way of decoding into the Go types.
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	got := back.Targets[0].Findings[3]
	if got.Check != policy.CheckDrillRecency || got.Status != checks.Fail || !slices.Equal(Reasons(got), []string{ReasonNoPassingDrill, ReasonRTOMissed}) {
		t.Errorf("decoded %+v, reasons %v", got, Reasons(got))
	}
}

func TestReportJSONEmpty(t *testing.T) {
	b, err := json.Marshal(&Report{SchemaVersion: ReportSchemaVersion})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"targets":[]`)) {
		t.Errorf("empty report: %s", b)
	}
}
