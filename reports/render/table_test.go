package render_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/olekukonko/tablewriter/pkg/twwidth"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/render"
)

var widths = []int{80, 100, 140}

func testSnapshots() []reports.SnapshotMetadata {
	return []reports.SnapshotMetadata{
		{ID: "20261121T162000Z-a1b2c3", TakenAt: takenAt, Mode: "online", EngineVersion: "15.18", SizeBytes: 3 << 30, Files: 412, FrozenSeconds: 95.2},
		{ID: "20261120T162000Z-0f0f0f", TakenAt: takenAt.Add(-24 * time.Hour), Mode: "online", EngineVersion: "15.17", SizeBytes: 1536, Files: 3, FrozenSeconds: 0.25},
	}
}

// The rows issue 17 saw reach 138 columns: an unreadable source whose reason names a URL and a
// path, next to short passing rows.
func testAuditRows() []render.AuditRow {
	return []render.AuditRow{
		{Target: "orders", Finding: checks.Finding{Check: "wal-archiving", Status: checks.Pass, Message: "archiving on; last segment 000000010000000000000042 archived 12s ago, no failures"}},
		{Target: "orders", Finding: checks.Finding{Check: "backup-age", Status: checks.Error, Message: "could not read source s3://backups-eu-west-1/orders/base/ at http://127.0.0.1:7070: auth: InvalidAccessKeyId: the access key id you provided does not exist in our records"}},
		{Target: "orders", Finding: checks.Finding{Check: "backup-size", Status: checks.Fail, Message: "newest backup /var/lib/firedrill/repository/orders/20261121T162000Z-a1b2c3/data.tar is 0 bytes"}},
		{Target: "orders-eu-west-1-primary", Finding: checks.Finding{Check: "drill-recency", Status: checks.Warn, Message: "no drill yet"}},
	}
}

func keptDrill() *reports.DrillResult {
	kept := passingDrill()
	kept.Kept = &reports.Kept{
		ScratchDir: "/tmp/firedrill-orders-1234", SocketDir: "/tmp/firedrill-orders-1234/socket",
		ServerLog: "/tmp/firedrill-orders-1234/server.log", PID: 4242,
		Connect: "host=/tmp/firedrill-orders-1234/socket port=5432 user=postgres dbname=postgres",
	}
	return kept
}

func failedDrill() *reports.DrillResult {
	failed := passingDrill()
	failed.Status = reports.StatusFail
	failed.Error = "2 checks failed; the copy in /var/lib/firedrill/scratch/firedrill-drill-orders-20261121T170000Z-d1e2f3/data is damaged"
	failed.Checks = []checks.Finding{
		{Check: "amcheck", Status: checks.Fail, Message: "2 corruption(s) in 1 relation(s), first in app.public.orders: invalid page in block 7 of relation /var/lib/firedrill/scratch/firedrill-drill-orders-20261121T170000Z-d1e2f3/data/base/16384/16397"},
		{Check: "row-counts", Status: checks.Error, Message: "could not count every table: invalid page in block 7 of relation base/16384/16397"},
	}
	return failed
}

// Every table, at 80, 100 and 140 columns: golden files, no line wider than the terminal, and
// ids shortened in the middle still showing their start and their end.
func TestTablesFitTheWidth(t *testing.T) {
	outputs := []struct {
		name  string
		write func(w *bytes.Buffer, width int) error
		// copyable are lines kept whole although wider than the terminal: commands a reader
		// copies, which a line break would break.
		copyable []string
	}{
		{"drill", func(b *bytes.Buffer, width int) error {
			return render.Drill(render.WithWidth(b, width), passingDrill())
		}, nil},
		{"drill-failed", func(b *bytes.Buffer, width int) error { return render.Drill(render.WithWidth(b, width), failedDrill()) }, nil},
		{"drill-kept", func(b *bytes.Buffer, width int) error { return render.Drill(render.WithWidth(b, width), keptDrill()) },
			[]string{"  connect:  psql ", "  server:   pid ", "  remove it when done: rm -rf "}},
		{"snapshots", func(b *bytes.Buffer, width int) error {
			return render.Snapshots(render.WithWidth(b, width), testSnapshots(), started)
		}, nil},
		{"audit", func(b *bytes.Buffer, width int) error {
			return render.Audit(render.WithWidth(b, width), testAuditRows())
		}, nil},
		{"findings", func(b *bytes.Buffer, width int) error {
			return render.Findings(render.WithWidth(b, width), failedDrill().Checks)
		}, nil},
	}
	for _, o := range outputs {
		for _, width := range widths {
			t.Run(fmt.Sprintf("%s at %d", o.name, width), func(t *testing.T) {
				var buf bytes.Buffer
				if err := o.write(&buf, width); err != nil {
					t.Fatal(err)
				}
				golden(t, fmt.Sprintf("%s-%d.golden", o.name, width), buf.Bytes())
			lines:
				for i, l := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
					for _, c := range o.copyable {
						if strings.HasPrefix(l, c) {
							continue lines
						}
					}
					if w := twwidth.Width(l); w > width {
						t.Errorf("line %d is %d columns wide, more than %d:\n%s", i+1, w, width, l)
					}
				}
			})
		}
	}
}

// Where an id had to be shortened, its start (the date) and its end (the random suffix) show.
func TestShortenedIDsKeepBothEnds(t *testing.T) {
	for _, width := range widths {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			var buf bytes.Buffer
			if err := render.Snapshots(render.WithWidth(&buf, width), testSnapshots(), started); err != nil {
				t.Fatal(err)
			}
			for _, s := range testSnapshots() {
				if strings.Contains(buf.String(), s.ID) {
					continue
				}
				start, end := s.ID[:9], s.ID[len(s.ID)-7:] // 20261121T, -a1b2c3
				if !strings.Contains(buf.String(), start) || !strings.Contains(buf.String(), "…"+end) {
					t.Errorf("snapshot %s is neither whole nor shortened to %s…%s at %d columns:\n%s", s.ID, start, end, width, buf.String())
				}
			}
		})
	}
	// At 80 columns the snapshots table does not fit whole: the ids are shortened.
	var buf bytes.Buffer
	if err := render.Snapshots(render.WithWidth(&buf, 80), testSnapshots(), started); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), testSnapshots()[0].ID) || !strings.Contains(buf.String(), "…-a1b2c3") {
		t.Errorf("at 80 columns the id should be shortened in the middle:\n%s", buf.String())
	}
}

// A status is never shortened or wrapped, however narrow the terminal; everything else gives way.
func TestStatusIsNeverShortened(t *testing.T) {
	rows := [][]string{
		{"20261121T162000Z-a1b2c3", "INTERRUPTED", "the drill was interrupted by SIGTERM while cloning /var/lib/firedrill/repository/orders"},
		{"20261120T162000Z-0f0f0f", "PASS", "ok"},
	}
	for _, width := range []int{30, 40, 60} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			var buf bytes.Buffer
			cols := render.Columns("ID", "STATUS", "DETAIL")
			cols[0].Shrink = render.Middle
			if err := render.Fit(render.WithWidth(&buf, width), cols, rows); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), " INTERRUPTED ") && !strings.Contains(buf.String(), "│INTERRUPTED│") {
				t.Errorf("the status was shortened at %d columns:\n%s", width, buf.String())
			}
			for _, l := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
				if w := twwidth.Width(l); w > width {
					t.Errorf("line %d columns wide at %d:\n%s", w, width, buf.String())
					break
				}
			}
		})
	}
}

// Wrapped free text loses nothing: a word wider than its column is broken over lines, not cut.
func TestWrappedTextLosesNothing(t *testing.T) {
	msg := "invalid page in block 7 of relation /var/lib/firedrill/scratch/firedrill-drill-orders-20261121T170000Z-d1e2f3/data/base/16384/16397"
	for _, width := range []int{40, 60, 80} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			var buf bytes.Buffer
			if err := render.Table(render.WithWidth(&buf, width), []string{"CHECK", "STATUS", "DETAIL"}, [][]string{{"amcheck", "FAIL", msg}}); err != nil {
				t.Fatal(err)
			}
			var detail strings.Builder
			for _, l := range strings.Split(buf.String(), "\n") {
				cells := strings.Split(l, "│")
				if len(cells) == 5 && strings.TrimSpace(cells[3]) != "DETAIL" {
					detail.WriteString(strings.TrimSpace(cells[3]))
				}
			}
			if got, want := strings.ReplaceAll(detail.String(), " ", ""), strings.ReplaceAll(msg, " ", ""); got != want {
				t.Errorf("the detail column, joined, reads\n%s\nwant\n%s\n%s", got, want, buf.String())
			}
		})
	}
}

func TestShortenMiddle(t *testing.T) {
	tests := []struct {
		in    string
		width int
		want  string
	}{
		{"20261130T040506Z-ab12cd", 18, "20261130T0…-ab12cd"},
		{"20261130T040506Z-ab12cd", 23, "20261130T040506Z-ab12cd"},
		{"20261130T040506Z-ab12cd", 30, "20261130T040506Z-ab12cd"},
		{"20261130T040506Z-ab12cd", 12, "202611…b12cd"},
		{"/var/lib/postgresql/15/main/data", 16, "/var/lib/…/data"},
		{"/var/lib/postgresql/15/main/data", 20, "/var/lib/…/data"},
		{"/var/lib/postgresql/15/main/data", 26, "/var/lib/postgresql/…/data"},
		{"/var/lib/postgresql/15/main/data", 6, "…/data"},
		{"relative/dir/file", 15, "relative/…/file"},
		{"/srv/a-very-long-last-element-name", 12, "/srv/a…-name"},
		{"orders", 2, "or"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s at %d", tt.in, tt.width), func(t *testing.T) {
			got := render.ShortenMiddle(tt.in, tt.width)
			if got != tt.want {
				t.Errorf("ShortenMiddle(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
			}
			if w := twwidth.Width(got); w > tt.width {
				t.Errorf("ShortenMiddle(%q, %d) is %d wide", tt.in, tt.width, w)
			}
		})
	}
}

// Without a known width (a pipe, a file) the writer is passed through and tables are written in
// full, as the golden files without a width show.
func TestUnknownWidthWritesInFull(t *testing.T) {
	var buf bytes.Buffer
	for _, width := range []int{0, -1} {
		if w := render.WithWidth(&buf, width); w != &buf || render.WidthOf(w) != 0 {
			t.Errorf("WithWidth(w, %d) should return w itself, of unknown width", width)
		}
	}
	if err := render.Audit(&buf, testAuditRows()); err != nil {
		t.Fatal(err)
	}
	golden(t, "audit.golden", buf.Bytes())
}

// Every column of the drill's phase table has a header (the third had none).
func TestPhaseTableHeaders(t *testing.T) {
	var buf bytes.Buffer
	if err := render.Drill(&buf, passingDrill()); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(buf.String(), "\n") {
		if !strings.Contains(l, "PHASE") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "│"), "│")
		for i, c := range cells {
			if strings.TrimSpace(c) == "" {
				t.Errorf("column %d of the phase table has no header: %q", i+1, l)
			}
		}
		return
	}
	t.Fatalf("no phase table:\n%s", buf.String())
}
