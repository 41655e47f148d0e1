package render_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/render"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	started = time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC)
	takenAt = time.Date(2026, 11, 21, 16, 20, 5, 0, time.UTC)
)

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func passingDrill() *reports.DrillResult {
	rp := time.Date(2026, 11, 21, 16, 19, 58, 0, time.UTC)
	return &reports.DrillResult{
		SchemaVersion: reports.SchemaVersion,
		ID:            "20261121T170000Z-d1e2f3",
		Target:        "orders",
		Engine:        "postgres",
		StartedAt:     started,
		FinishedAt:    started.Add(4*time.Minute + 12*time.Second),
		Status:        reports.StatusPass,
		Snapshot: &reports.SnapshotRef{
			ID: "20261121T162000Z-a1b2c3", TakenAt: takenAt, Driver: "local", EngineVersion: "15.18",
			SizeBytes: 3 << 30, AgeSeconds: started.Sub(takenAt).Seconds(),
		},
		RTO: reports.RTO{TargetSeconds: 600, ActualSeconds: 245.4, Met: true},
		Phases: []reports.Phase{
			{Name: "select", Seconds: 0.012, CountsTowardRTO: true},
			{Name: "clone", Seconds: 75.3, CountsTowardRTO: true},
			{Name: "start", Seconds: 12.34, CountsTowardRTO: true},
			{Name: "check", Seconds: 157.8, CountsTowardRTO: true},
			{Name: "teardown", Seconds: 6.6, CountsTowardRTO: false},
		},
		Checks: []checks.Finding{
			{Check: "snapshot", Status: checks.Pass, Message: "412 files verified against the manifest"},
			{Check: "amcheck", Status: checks.Pass, Message: "120 tables and 240 btree indexes in 3 databases verified, no corruption"},
			{Check: "row-counts", Status: checks.Warn, Message: "public.orders has 0 rows"},
			{Check: "sql:balances-match", Status: checks.Pass, Message: `returned "t" as expected`},
			{Check: "freshness", Status: checks.Pass, Message: "newest data is 40m2s old at drill time, within the RPO of 1h0m0s"},
			{Check: "checksums", Status: checks.Pass, Message: "no checksum failures after reading every page"},
		},
		RecoveryPoint:       &rp,
		RecoveryPointSource: "freshness",
		Runtime:             &reports.Runtime{Kind: "local", EngineVersion: "15.18", Listen: "socket", NetworkIsolated: true},
	}
}

func TestDrill(t *testing.T) {
	kept := passingDrill()
	kept.Kept = &reports.Kept{
		ScratchDir: "/tmp/firedrill-orders-1234", SocketDir: "/tmp/firedrill-orders-1234/socket",
		ServerLog: "/tmp/firedrill-orders-1234/server.log", PID: 4242,
		Connect: "host=/tmp/firedrill-orders-1234/socket port=5432 user=postgres dbname=postgres",
	}
	noSnapshot := &reports.DrillResult{
		ID: "20261121T170000Z-000001", Target: "orders", Engine: "postgres",
		StartedAt: started, FinishedAt: started.Add(400 * time.Millisecond),
		Status: reports.StatusError,
		Error:  "no snapshot of orders in /backups/orders (take one with: firedrill snapshot --target orders)",
		RTO:    reports.RTO{TargetSeconds: 3600, ActualSeconds: 0.4},
		Phases: []reports.Phase{{Name: "select", Seconds: 0.4, CountsTowardRTO: true}},
	}
	failed := passingDrill()
	failed.Status = reports.StatusFail
	failed.RTO = reports.RTO{TargetSeconds: 120, ActualSeconds: 245.4, Met: false}
	failed.RecoveryPoint, failed.RecoveryPointSource = &takenAt, "snapshot"
	failed.Checks = []checks.Finding{
		{Check: "amcheck", Status: checks.Fail, Message: "2 corruption(s) in 1 relation(s), first in app.public.orders: invalid page in block 7 of relation base/16384/16397"},
		{Check: "pg_checksums", Status: checks.Error, Message: "pg_checksums could not run: exit status 1"},
	}
	tests := []struct {
		name   string
		result *reports.DrillResult
		file   string
	}{
		{"passing drill", passingDrill(), "drill.golden"},
		{"kept drill", kept, "drill-kept.golden"},
		{"failing drill", failed, "drill-failed.golden"},
		{"drill without a snapshot", noSnapshot, "drill-error.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := render.Drill(&buf, tt.result); err != nil {
				t.Fatalf("Drill: %v", err)
			}
			golden(t, tt.file, buf.Bytes())
		})
	}
}

func TestSnapshots(t *testing.T) {
	snaps := []reports.SnapshotMetadata{
		{ID: "20261121T162000Z-a1b2c3", TakenAt: takenAt, Mode: "online", EngineVersion: "15.18", SizeBytes: 3 << 30, Files: 412, FrozenSeconds: 95.2},
		{ID: "20261120T162000Z-0f0f0f", TakenAt: takenAt.Add(-24 * time.Hour), Mode: "online", EngineVersion: "15.17", SizeBytes: 1536, Files: 3, FrozenSeconds: 0.25},
	}
	var buf bytes.Buffer
	if err := render.Snapshots(&buf, snaps, started); err != nil {
		t.Fatalf("Snapshots: %v", err)
	}
	golden(t, "snapshots.golden", buf.Bytes())
}

func TestFindings(t *testing.T) {
	var buf bytes.Buffer
	if err := render.Findings(&buf, passingDrill().Checks[:3]); err != nil {
		t.Fatalf("Findings: %v", err)
	}
	golden(t, "findings.golden", buf.Bytes())
}

func TestDrillJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := render.JSON(&buf, passingDrill()); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	var back reports.DrillResult
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("the JSON does not decode: %v\n%s", err, buf.Bytes())
	}
	if back.ID != passingDrill().ID || back.Checks[2].Status != checks.Warn || !back.StartedAt.Equal(started) {
		t.Errorf("JSON round trip lost data: %+v", back)
	}
	if !strings.Contains(buf.String(), "\n  \"schemaVersion\": 1,") {
		t.Errorf("JSON is not indented by two spaces:\n%s", buf.Bytes())
	}
}

func TestDur(t *testing.T) {
	tests := []struct {
		sec  float64
		want string
	}{
		{0, "0ms"},
		{0.0004, "0ms"},
		{0.85, "850ms"},
		{0.999, "999ms"},
		{1, "1.0s"},
		{12.34, "12.3s"},
		{59.9, "59.9s"},
		{60, "1m00s"},
		{245, "4m05s"},
		{245.9, "4m05s"},
		{3599, "59m59s"},
		{3600, "1h00m"},
		{7380, "2h03m"},
		{47*3600 + 59*60, "47h59m"},
		{48 * 3600, "2d00h"},
		{3*86400 + 4*3600, "3d04h"},
		{31 * 86400, "31d00h"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := render.Dur(tt.sec); got != tt.want {
				t.Errorf("Dur(%v) = %q, want %q", tt.sec, got, tt.want)
			}
		})
	}
}

func TestDurRoundsIntoTheNextUnit(t *testing.T) {
	if got := render.Dur(59.96); got != "1m00s" {
		t.Errorf("Dur(59.96) = %q, want 1m00s", got)
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    render.Format
		wantErr bool
	}{
		{"table", render.FormatTable, false},
		{"json", render.FormatJSON, false},
		{"yaml", "", true},
		{"JSON", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := render.ParseFormat(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseFormat(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
