package metrics_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/metrics"
)

// now is the scrape clock: ten minutes after the audit fixture's own clock.
var now = time.Date(2026, 11, 23, 3, 10, 0, 0, time.UTC)

func orders() metrics.Target {
	return metrics.Target{
		Name: "orders", Engine: "postgres", RPO: 24 * time.Hour, RTO: 10 * time.Minute,
		Checks:    []string{"amcheck", "checksums"},
		Phases:    []string{"select", "clone", "start-and-recovery", "teardown"},
		Sources:   []string{"primary", "snapshots", "offsite", "archive"},
		CopyKinds: []string{"disk", "object-storage"},
	}
}

func newMetrics(t *testing.T, targets ...metrics.Target) (*prometheus.Registry, *metrics.Metrics) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.New(reg, targets, metrics.WithClock(func() time.Time { return now }), metrics.WithVersion("v1.2.3"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return reg, m
}

// ts formats a time as the exposition writes a Unix timestamp.
func ts(s string) string {
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return num(float64(at.Unix()))
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func readJSON[T any](t *testing.T, name string) T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func compare(t *testing.T, reg prometheus.Gatherer, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func TestPreinitialised(t *testing.T) {
	reg, _ := newMetrics(t, orders())
	want := `
# HELP firedrill_drill_success 1 if the target's last restore drill passed, 0 if it failed or could not run (see the drill's result for which).
# TYPE firedrill_drill_success gauge
firedrill_drill_success{target="orders"} NaN
# HELP firedrill_drill_duration_seconds How long restore drills that completed (passed or failed) took, from start to teardown.
# TYPE firedrill_drill_duration_seconds histogram
firedrill_drill_duration_seconds_bucket{target="orders",le="0.5"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="1"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="2.5"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="5"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="10"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="15"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="30"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="60"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="120"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="300"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="600"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="900"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="1200"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="1800"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="2700"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="3600"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="+Inf"} 0
firedrill_drill_duration_seconds_sum{target="orders"} 0
firedrill_drill_duration_seconds_count{target="orders"} 0
# HELP firedrill_rto_target_seconds The target's recovery time objective: the longest a restore to a verified, usable copy may take (NaN: none configured).
# TYPE firedrill_rto_target_seconds gauge
firedrill_rto_target_seconds{target="orders"} 600
# HELP firedrill_rpo_target_seconds The target's recovery point objective: the most data, in seconds, its backups may lose (the oldest the newest backup may be).
# TYPE firedrill_rpo_target_seconds gauge
firedrill_rpo_target_seconds{target="orders"} 86400
# HELP firedrill_backup_age_seconds How old the newest good backup at this source is now: the time since firedrill_backup_last_timestamp_seconds, growing between audits; compare with firedrill_rpo_target_seconds (+Inf: the source holds no good backup; NaN: not read yet).
# TYPE firedrill_backup_age_seconds gauge
firedrill_backup_age_seconds{source="archive",target="orders"} NaN
firedrill_backup_age_seconds{source="offsite",target="orders"} NaN
firedrill_backup_age_seconds{source="primary",target="orders"} NaN
firedrill_backup_age_seconds{source="snapshots",target="orders"} NaN
# HELP firedrill_audit_errors_total Audits that could not read this source (a backup source, or, for errors no backup source is to blame for, the check that could not run: wal-archiving could not query the database, drill-recency the history): nothing was proved about it.
# TYPE firedrill_audit_errors_total counter
firedrill_audit_errors_total{source="archive",target="orders"} 0
firedrill_audit_errors_total{source="backup-age",target="orders"} 0
firedrill_audit_errors_total{source="backup-integrity",target="orders"} 0
firedrill_audit_errors_total{source="backup-size",target="orders"} 0
firedrill_audit_errors_total{source="copies-3-2-1",target="orders"} 0
firedrill_audit_errors_total{source="drill-recency",target="orders"} 0
firedrill_audit_errors_total{source="offsite",target="orders"} 0
firedrill_audit_errors_total{source="primary",target="orders"} 0
firedrill_audit_errors_total{source="snapshots",target="orders"} 0
firedrill_audit_errors_total{source="wal-archiving",target="orders"} 0
firedrill_audit_errors_total{source="wal-continuity",target="orders"} 0
# HELP firedrill_build_info Always 1; its labels say which firedrill build is running.
# TYPE firedrill_build_info gauge
`
	got, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// build_info's revision and goversion labels depend on the build: only its version is compared.
	for _, mf := range got {
		if mf.GetName() == "firedrill_build_info" {
			if len(mf.Metric) != 1 || labelValue(mf.Metric[0].Label, "version") != "v1.2.3" || mf.Metric[0].GetGauge().GetValue() != 1 {
				t.Errorf("firedrill_build_info = %v, want one series, version v1.2.3, value 1", mf.Metric)
			}
		}
	}
	compare(t, reg, strings.TrimSuffix(want, "# HELP firedrill_build_info Always 1; its labels say which firedrill build is running.\n# TYPE firedrill_build_info gauge\n"),
		"firedrill_drill_success", "firedrill_drill_duration_seconds", "firedrill_rto_target_seconds", "firedrill_rpo_target_seconds",
		"firedrill_backup_age_seconds", "firedrill_audit_errors_total")

	// Every family has the target's series from the start, except pg_stat_archiver's counters
	// (see TestWALCountersAppearWithTheFirstReading), and every series of a label set the
	// target names exists: NaN (not known yet) for gauges, so nothing fires before a measurement.
	present := map[string]int{}
	for _, mf := range got {
		for _, mt := range mf.Metric {
			if labelValue(mt.Label, "target") == "orders" || mf.GetName() == "firedrill_build_info" {
				present[mf.GetName()]++
			}
			if g := mt.GetGauge(); g != nil && g.GetValue() == 0 && mf.GetName() != "firedrill_build_info" {
				t.Errorf("%s%v is 0 before anything was observed: an alert on it would fire at start", mf.GetName(), mt.Label)
			}
		}
	}
	for _, n := range metrics.Names() {
		if n == "firedrill_wal_archived_total" || n == "firedrill_wal_archive_failed_total" {
			if present[n] != 0 {
				t.Errorf("%s has series before the archiver was read", n)
			}
			continue
		}
		if present[n] == 0 {
			t.Errorf("%s has no series for a new target", n)
		}
	}
	wantCount := map[string]int{
		"firedrill_drill_phase_duration_seconds": 4, "firedrill_backup_last_timestamp_seconds": 4, "firedrill_backup_size_bytes": 4,
		"firedrill_copy_immutable": 4, "firedrill_backup_copies": 2, "firedrill_check_success": 9, "firedrill_check_duration_seconds": 9,
	}
	for n, c := range wantCount {
		if present[n] != c {
			t.Errorf("%s has %d series, want %d", n, present[n], c)
		}
	}
}

func labelValue[L interface {
	GetName() string
	GetValue() string
}](ls []L, name string) string {
	for _, l := range ls {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestObserveDrill(t *testing.T) {
	tests := []struct {
		name   string
		drills []string
		want   string
	}{
		{
			name:   "pass",
			drills: []string{"drill-pass.json"},
			want: `
# HELP firedrill_drill_last_run_timestamp_seconds When the target's last restore drill started, as a Unix time (NaN until a drill is known).
# TYPE firedrill_drill_last_run_timestamp_seconds gauge
firedrill_drill_last_run_timestamp_seconds{target="orders"} ` + ts("2026-11-22T03:00:00Z") + `
# HELP firedrill_drill_last_success_timestamp_seconds When the target's last passing restore drill finished, as a Unix time: the last time its backups were proved restorable (NaN until a passing drill is known).
# TYPE firedrill_drill_last_success_timestamp_seconds gauge
firedrill_drill_last_success_timestamp_seconds{target="orders"} ` + ts("2026-11-22T03:04:10Z") + `
# HELP firedrill_drill_success 1 if the target's last restore drill passed, 0 if it failed or could not run (see the drill's result for which).
# TYPE firedrill_drill_success gauge
firedrill_drill_success{target="orders"} 1
# HELP firedrill_drill_phase_duration_seconds How long each phase of the target's last drill took (NaN: the last drill did not reach it).
# TYPE firedrill_drill_phase_duration_seconds gauge
firedrill_drill_phase_duration_seconds{phase="check:amcheck",target="orders"} 150
firedrill_drill_phase_duration_seconds{phase="check:checksums",target="orders"} 30
firedrill_drill_phase_duration_seconds{phase="clone",target="orders"} 42
firedrill_drill_phase_duration_seconds{phase="select",target="orders"} 0.5
firedrill_drill_phase_duration_seconds{phase="start-and-recovery",target="orders"} 13
firedrill_drill_phase_duration_seconds{phase="teardown",target="orders"} 14.5
# HELP firedrill_drill_rto_met 1 if the last completed drill reached a verified copy within the RTO, 0 if it took longer.
# TYPE firedrill_drill_rto_met gauge
firedrill_drill_rto_met{target="orders"} 1
# HELP firedrill_drill_rto_actual_seconds How long the last completed drill took to reach a verified, usable copy: the measured recovery time, compared with firedrill_rto_target_seconds.
# TYPE firedrill_drill_rto_actual_seconds gauge
firedrill_drill_rto_actual_seconds{target="orders"} 235.5
# HELP firedrill_drill_duration_seconds How long restore drills that completed (passed or failed) took, from start to teardown.
# TYPE firedrill_drill_duration_seconds histogram
firedrill_drill_duration_seconds_bucket{target="orders",le="0.5"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="1"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="2.5"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="5"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="10"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="15"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="30"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="60"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="120"} 0
firedrill_drill_duration_seconds_bucket{target="orders",le="300"} 1
firedrill_drill_duration_seconds_bucket{target="orders",le="600"} 1
firedrill_drill_duration_seconds_bucket{target="orders",le="900"} 1
firedrill_drill_duration_seconds_bucket{target="orders",le="1200"} 1
firedrill_drill_duration_seconds_bucket{target="orders",le="1800"} 1
firedrill_drill_duration_seconds_bucket{target="orders",le="2700"} 1
firedrill_drill_duration_seconds_bucket{target="orders",le="3600"} 1
firedrill_drill_duration_seconds_bucket{target="orders",le="+Inf"} 1
firedrill_drill_duration_seconds_sum{target="orders"} 250
firedrill_drill_duration_seconds_count{target="orders"} 1
# HELP firedrill_check_success 1 if the check passed (or only warned) the last time it ran, 0 if it failed or could not check. Drill checks (amcheck, checksums, ...) and audit checks (wal-archiving, backup-age, ...).
# TYPE firedrill_check_success gauge
firedrill_check_success{check="amcheck",target="orders"} 1
firedrill_check_success{check="backup-age",target="orders"} NaN
firedrill_check_success{check="backup-integrity",target="orders"} NaN
firedrill_check_success{check="backup-size",target="orders"} NaN
firedrill_check_success{check="checksums",target="orders"} 1
firedrill_check_success{check="copies-3-2-1",target="orders"} NaN
firedrill_check_success{check="drill-recency",target="orders"} NaN
firedrill_check_success{check="wal-archiving",target="orders"} NaN
firedrill_check_success{check="wal-continuity",target="orders"} NaN
`,
		},
		{
			// A failed drill after a passing one: the last success stays, the RTO was missed,
			// a phase it did not reach is NaN, and both drills are in the histogram.
			name:   "pass then fail",
			drills: []string{"drill-pass.json", "drill-fail.json"},
			want: `
# HELP firedrill_drill_last_run_timestamp_seconds When the target's last restore drill started, as a Unix time (NaN until a drill is known).
# TYPE firedrill_drill_last_run_timestamp_seconds gauge
firedrill_drill_last_run_timestamp_seconds{target="orders"} ` + ts("2026-11-23T03:00:00Z") + `
# HELP firedrill_drill_last_success_timestamp_seconds When the target's last passing restore drill finished, as a Unix time: the last time its backups were proved restorable (NaN until a passing drill is known).
# TYPE firedrill_drill_last_success_timestamp_seconds gauge
firedrill_drill_last_success_timestamp_seconds{target="orders"} ` + ts("2026-11-22T03:04:10Z") + `
# HELP firedrill_drill_success 1 if the target's last restore drill passed, 0 if it failed or could not run (see the drill's result for which).
# TYPE firedrill_drill_success gauge
firedrill_drill_success{target="orders"} 0
# HELP firedrill_drill_phase_duration_seconds How long each phase of the target's last drill took (NaN: the last drill did not reach it).
# TYPE firedrill_drill_phase_duration_seconds gauge
firedrill_drill_phase_duration_seconds{phase="check:amcheck",target="orders"} 270
firedrill_drill_phase_duration_seconds{phase="check:checksums",target="orders"} 30
firedrill_drill_phase_duration_seconds{phase="clone",target="orders"} 600
firedrill_drill_phase_duration_seconds{phase="select",target="orders"} 1
firedrill_drill_phase_duration_seconds{phase="start-and-recovery",target="orders"} 29
firedrill_drill_phase_duration_seconds{phase="teardown",target="orders"} 30
# HELP firedrill_drill_rto_met 1 if the last completed drill reached a verified copy within the RTO, 0 if it took longer.
# TYPE firedrill_drill_rto_met gauge
firedrill_drill_rto_met{target="orders"} 0
# HELP firedrill_drill_rto_actual_seconds How long the last completed drill took to reach a verified, usable copy: the measured recovery time, compared with firedrill_rto_target_seconds.
# TYPE firedrill_drill_rto_actual_seconds gauge
firedrill_drill_rto_actual_seconds{target="orders"} 900
# HELP firedrill_check_success 1 if the check passed (or only warned) the last time it ran, 0 if it failed or could not check. Drill checks (amcheck, checksums, ...) and audit checks (wal-archiving, backup-age, ...).
# TYPE firedrill_check_success gauge
firedrill_check_success{check="amcheck",target="orders"} 0
firedrill_check_success{check="backup-age",target="orders"} NaN
firedrill_check_success{check="backup-integrity",target="orders"} NaN
firedrill_check_success{check="backup-size",target="orders"} NaN
firedrill_check_success{check="checksums",target="orders"} 0
firedrill_check_success{check="copies-3-2-1",target="orders"} NaN
firedrill_check_success{check="drill-recency",target="orders"} NaN
firedrill_check_success{check="wal-archiving",target="orders"} NaN
firedrill_check_success{check="wal-continuity",target="orders"} NaN
`,
		},
		{
			// A drill that could not run: not a success, not in the duration histogram, no RTO
			// measured (the failed drill's stands), phases it did not reach NaN, its checks NaN.
			name:   "fail then error",
			drills: []string{"drill-fail.json", "drill-error.json"},
			want: `
# HELP firedrill_drill_last_run_timestamp_seconds When the target's last restore drill started, as a Unix time (NaN until a drill is known).
# TYPE firedrill_drill_last_run_timestamp_seconds gauge
firedrill_drill_last_run_timestamp_seconds{target="orders"} ` + ts("2026-11-24T03:00:00Z") + `
# HELP firedrill_drill_last_success_timestamp_seconds When the target's last passing restore drill finished, as a Unix time: the last time its backups were proved restorable (NaN until a passing drill is known).
# TYPE firedrill_drill_last_success_timestamp_seconds gauge
firedrill_drill_last_success_timestamp_seconds{target="orders"} NaN
# HELP firedrill_drill_success 1 if the target's last restore drill passed, 0 if it failed or could not run (see the drill's result for which).
# TYPE firedrill_drill_success gauge
firedrill_drill_success{target="orders"} 0
# HELP firedrill_drill_phase_duration_seconds How long each phase of the target's last drill took (NaN: the last drill did not reach it).
# TYPE firedrill_drill_phase_duration_seconds gauge
firedrill_drill_phase_duration_seconds{phase="check:amcheck",target="orders"} 270
firedrill_drill_phase_duration_seconds{phase="clone",target="orders"} 1.5
firedrill_drill_phase_duration_seconds{phase="select",target="orders"} 0.5
firedrill_drill_phase_duration_seconds{phase="start-and-recovery",target="orders"} NaN
firedrill_drill_phase_duration_seconds{phase="teardown",target="orders"} NaN
# HELP firedrill_drill_rto_met 1 if the last completed drill reached a verified copy within the RTO, 0 if it took longer.
# TYPE firedrill_drill_rto_met gauge
firedrill_drill_rto_met{target="orders"} 0
# HELP firedrill_drill_rto_actual_seconds How long the last completed drill took to reach a verified, usable copy: the measured recovery time, compared with firedrill_rto_target_seconds.
# TYPE firedrill_drill_rto_actual_seconds gauge
firedrill_drill_rto_actual_seconds{target="orders"} 900
# HELP firedrill_check_success 1 if the check passed (or only warned) the last time it ran, 0 if it failed or could not check. Drill checks (amcheck, checksums, ...) and audit checks (wal-archiving, backup-age, ...).
# TYPE firedrill_check_success gauge
firedrill_check_success{check="amcheck",target="orders"} NaN
firedrill_check_success{check="backup-age",target="orders"} NaN
firedrill_check_success{check="backup-integrity",target="orders"} NaN
firedrill_check_success{check="backup-size",target="orders"} NaN
firedrill_check_success{check="checksums",target="orders"} NaN
firedrill_check_success{check="copies-3-2-1",target="orders"} NaN
firedrill_check_success{check="drill-recency",target="orders"} NaN
firedrill_check_success{check="wal-archiving",target="orders"} NaN
firedrill_check_success{check="wal-continuity",target="orders"} NaN
`,
		},
		{
			// A result older than one already observed (a history read late) changes nothing
			// of "the last drill".
			name:   "older result after newer",
			drills: []string{"drill-fail.json", "drill-pass.json"},
			want: `
# HELP firedrill_drill_last_run_timestamp_seconds When the target's last restore drill started, as a Unix time (NaN until a drill is known).
# TYPE firedrill_drill_last_run_timestamp_seconds gauge
firedrill_drill_last_run_timestamp_seconds{target="orders"} ` + ts("2026-11-23T03:00:00Z") + `
# HELP firedrill_drill_success 1 if the target's last restore drill passed, 0 if it failed or could not run (see the drill's result for which).
# TYPE firedrill_drill_success gauge
firedrill_drill_success{target="orders"} 0
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, m := newMetrics(t, orders())
			for _, f := range tt.drills {
				r := readJSON[reports.DrillResult](t, f)
				m.ObserveDrill(&r)
			}
			compare(t, reg, tt.want, familiesIn(tt.want)...)
		})
	}
}

// familiesIn lists the families an expected exposition names (its # TYPE lines).
func familiesIn(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[1] == "TYPE" {
			out = append(out, f[2])
		}
	}
	return out
}

func TestObserveAudit(t *testing.T) {
	findings := readJSON[[]checks.Finding](t, "audit-findings.json")
	tests := []struct {
		name string
		// before are drills observed before the audit.
		before []string
		want   string
	}{
		{
			name: "audit only",
			want: `
# HELP firedrill_backup_last_timestamp_seconds When the newest good backup at this source was taken, as a Unix time, as of the last audit (0: the source holds no good backup; NaN: not read yet).
# TYPE firedrill_backup_last_timestamp_seconds gauge
firedrill_backup_last_timestamp_seconds{source="archive",target="orders"} NaN
firedrill_backup_last_timestamp_seconds{source="offsite",target="orders"} NaN
firedrill_backup_last_timestamp_seconds{source="primary",target="orders"} ` + ts("2026-11-23T01:00:00Z") + `
firedrill_backup_last_timestamp_seconds{source="snapshots",target="orders"} 0
# HELP firedrill_backup_age_seconds How old the newest good backup at this source is now: the time since firedrill_backup_last_timestamp_seconds, growing between audits; compare with firedrill_rpo_target_seconds (+Inf: the source holds no good backup; NaN: not read yet).
# TYPE firedrill_backup_age_seconds gauge
firedrill_backup_age_seconds{source="archive",target="orders"} NaN
firedrill_backup_age_seconds{source="offsite",target="orders"} NaN
firedrill_backup_age_seconds{source="primary",target="orders"} 7800
firedrill_backup_age_seconds{source="snapshots",target="orders"} +Inf
# HELP firedrill_backup_size_bytes Size of the newest backup at this source as of the last audit (NaN: not read yet, or the storage reports no size).
# TYPE firedrill_backup_size_bytes gauge
firedrill_backup_size_bytes{source="archive",target="orders"} NaN
firedrill_backup_size_bytes{source="offsite",target="orders"} NaN
firedrill_backup_size_bytes{source="primary",target="orders"} 3000
firedrill_backup_size_bytes{source="snapshots",target="orders"} NaN
# HELP firedrill_wal_archived_total WAL segments PostgreSQL archived since its statistics were last reset (pg_stat_archiver.archived_count, as of the last audit). Absent until the first audit read it.
# TYPE firedrill_wal_archived_total counter
firedrill_wal_archived_total{target="orders"} 66
# HELP firedrill_wal_archive_failed_total Failed attempts to archive a WAL segment since PostgreSQL's statistics were last reset (pg_stat_archiver.failed_count, as of the last audit); any increase means archive_command failed. Absent until the first audit read it.
# TYPE firedrill_wal_archive_failed_total counter
firedrill_wal_archive_failed_total{target="orders"} 7
# HELP firedrill_wal_last_archived_timestamp_seconds When PostgreSQL last archived a WAL segment, as a Unix time (pg_stat_archiver.last_archived_time; NaN: none since the statistics reset, or not read yet).
# TYPE firedrill_wal_last_archived_timestamp_seconds gauge
firedrill_wal_last_archived_timestamp_seconds{target="orders"} ` + ts("2026-11-23T02:40:00Z") + `
# HELP firedrill_wal_archive_pending_segments WAL segments waiting to be archived (.ready files in pg_wal/archive_status) at the last audit; growing means archiving is falling behind (NaN: could not be counted, grant pg_monitor).
# TYPE firedrill_wal_archive_pending_segments gauge
firedrill_wal_archive_pending_segments{target="orders"} 2
# HELP firedrill_backup_copies Usable copies of the target's newest backup on each kind of media, as the last 3-2-1 audit counted them (the live database counts as one on disk when copies.liveDatabase is set); their sum is the number of copies.
# TYPE firedrill_backup_copies gauge
firedrill_backup_copies{kind="disk",target="orders"} 2
firedrill_backup_copies{kind="object-storage",target="orders"} 1
# HELP firedrill_backup_copies_required How many copies of the newest backup the target's policy requires (copies.minCopies).
# TYPE firedrill_backup_copies_required gauge
firedrill_backup_copies_required{target="orders"} 3
# HELP firedrill_copy_immutable 1 if the copy of the newest backup at this source is immutable (Object Lock retains it long enough), 0 if not or if there is no copy there.
# TYPE firedrill_copy_immutable gauge
firedrill_copy_immutable{source="archive",target="orders"} 1
firedrill_copy_immutable{source="offsite",target="orders"} NaN
firedrill_copy_immutable{source="primary",target="orders"} 0
firedrill_copy_immutable{source="snapshots",target="orders"} NaN
# HELP firedrill_check_success 1 if the check passed (or only warned) the last time it ran, 0 if it failed or could not check. Drill checks (amcheck, checksums, ...) and audit checks (wal-archiving, backup-age, ...).
# TYPE firedrill_check_success gauge
firedrill_check_success{check="amcheck",target="orders"} NaN
firedrill_check_success{check="backup-age",target="orders"} 0
firedrill_check_success{check="backup-integrity",target="orders"} NaN
firedrill_check_success{check="backup-size",target="orders"} 0
firedrill_check_success{check="checksums",target="orders"} NaN
firedrill_check_success{check="copies-3-2-1",target="orders"} 0
firedrill_check_success{check="drill-recency",target="orders"} 0
firedrill_check_success{check="wal-archiving",target="orders"} 0
firedrill_check_success{check="wal-continuity",target="orders"} NaN
# HELP firedrill_check_duration_seconds How long the check took the last time it ran.
# TYPE firedrill_check_duration_seconds gauge
firedrill_check_duration_seconds{check="amcheck",target="orders"} NaN
firedrill_check_duration_seconds{check="backup-age",target="orders"} 0.2
firedrill_check_duration_seconds{check="backup-integrity",target="orders"} NaN
firedrill_check_duration_seconds{check="backup-size",target="orders"} 0.001
firedrill_check_duration_seconds{check="checksums",target="orders"} NaN
firedrill_check_duration_seconds{check="copies-3-2-1",target="orders"} 0.05
firedrill_check_duration_seconds{check="drill-recency",target="orders"} 0.003
firedrill_check_duration_seconds{check="wal-archiving",target="orders"} 0.012
firedrill_check_duration_seconds{check="wal-continuity",target="orders"} NaN
# HELP firedrill_audit_duration_seconds How long the target's last audit took.
# TYPE firedrill_audit_duration_seconds gauge
firedrill_audit_duration_seconds{target="orders"} 1.5
# HELP firedrill_audit_last_run_timestamp_seconds When the target's last audit finished, as a Unix time.
# TYPE firedrill_audit_last_run_timestamp_seconds gauge
firedrill_audit_last_run_timestamp_seconds{target="orders"} ` + ts("2026-11-23T03:10:00Z") + `
# HELP firedrill_audit_errors_total Audits that could not read this source (a backup source, or, for errors no backup source is to blame for, the check that could not run: wal-archiving could not query the database, drill-recency the history): nothing was proved about it.
# TYPE firedrill_audit_errors_total counter
firedrill_audit_errors_total{source="archive",target="orders"} 0
firedrill_audit_errors_total{source="backup-age",target="orders"} 0
firedrill_audit_errors_total{source="backup-integrity",target="orders"} 0
firedrill_audit_errors_total{source="backup-size",target="orders"} 0
firedrill_audit_errors_total{source="copies-3-2-1",target="orders"} 0
firedrill_audit_errors_total{source="drill-recency",target="orders"} 0
firedrill_audit_errors_total{source="offsite",target="orders"} 1
firedrill_audit_errors_total{source="primary",target="orders"} 0
firedrill_audit_errors_total{source="snapshots",target="orders"} 0
firedrill_audit_errors_total{source="wal-archiving",target="orders"} 0
firedrill_audit_errors_total{source="wal-continuity",target="orders"} 0
# HELP firedrill_drill_last_run_timestamp_seconds When the target's last restore drill started, as a Unix time (NaN until a drill is known).
# TYPE firedrill_drill_last_run_timestamp_seconds gauge
firedrill_drill_last_run_timestamp_seconds{target="orders"} ` + ts("2026-11-22T03:00:00Z") + `
# HELP firedrill_drill_last_success_timestamp_seconds When the target's last passing restore drill finished, as a Unix time: the last time its backups were proved restorable (NaN until a passing drill is known).
# TYPE firedrill_drill_last_success_timestamp_seconds gauge
firedrill_drill_last_success_timestamp_seconds{target="orders"} ` + ts("2026-11-01T03:04:10Z") + `
# HELP firedrill_drill_success 1 if the target's last restore drill passed, 0 if it failed or could not run (see the drill's result for which).
# TYPE firedrill_drill_success gauge
firedrill_drill_success{target="orders"} 0
# HELP firedrill_drill_rto_met 1 if the last completed drill reached a verified copy within the RTO, 0 if it took longer.
# TYPE firedrill_drill_rto_met gauge
firedrill_drill_rto_met{target="orders"} 0
`,
		},
		{
			// The history's last drill is the one already observed, and its last passing drill
			// older than the one observed: what the process saw itself stands.
			name:   "drill observed first",
			before: []string{"drill-pass.json"},
			want: `
# HELP firedrill_drill_last_run_timestamp_seconds When the target's last restore drill started, as a Unix time (NaN until a drill is known).
# TYPE firedrill_drill_last_run_timestamp_seconds gauge
firedrill_drill_last_run_timestamp_seconds{target="orders"} ` + ts("2026-11-22T03:00:00Z") + `
# HELP firedrill_drill_last_success_timestamp_seconds When the target's last passing restore drill finished, as a Unix time: the last time its backups were proved restorable (NaN until a passing drill is known).
# TYPE firedrill_drill_last_success_timestamp_seconds gauge
firedrill_drill_last_success_timestamp_seconds{target="orders"} ` + ts("2026-11-22T03:04:10Z") + `
# HELP firedrill_drill_success 1 if the target's last restore drill passed, 0 if it failed or could not run (see the drill's result for which).
# TYPE firedrill_drill_success gauge
firedrill_drill_success{target="orders"} 1
# HELP firedrill_drill_rto_met 1 if the last completed drill reached a verified copy within the RTO, 0 if it took longer.
# TYPE firedrill_drill_rto_met gauge
firedrill_drill_rto_met{target="orders"} 1
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, m := newMetrics(t, orders())
			for _, f := range tt.before {
				r := readJSON[reports.DrillResult](t, f)
				m.ObserveDrill(&r)
			}
			m.ObserveAudit("orders", findings, 1500*time.Millisecond)
			compare(t, reg, tt.want, familiesIn(tt.want)...)
		})
	}
}

// TestObserveAuditUnreadable: a second audit that could read nothing leaves what the first
// one read (the backup keeps ageing) and counts its errors.
func TestObserveAuditUnreadable(t *testing.T) {
	reg, m := newMetrics(t, orders())
	m.ObserveAudit("orders", readJSON[[]checks.Finding](t, "audit-findings.json"), time.Second)
	down := []checks.Finding{
		checks.Errorf("wal-archiving", checks.Evidence{"error": "connection refused", "reasons": []string{"unreadable"}}, "could not connect to the database"),
		checks.Errorf("backup-age", checks.Evidence{"sources": []map[string]any{
			{"source": "primary", "status": "error", "error": "permission denied"},
			{"source": "offsite", "status": "error", "error": "connection refused"},
		}}, "could not read primary, offsite"),
		checks.Errorf("copies-3-2-1", checks.Evidence{"minCopies": 3}, "could not read primary"),
	}
	m.ObserveAudit("orders", down, time.Second)
	m.AuditError("orders", "archive")
	compare(t, reg, `
# HELP firedrill_audit_errors_total Audits that could not read this source (a backup source, or, for errors no backup source is to blame for, the check that could not run: wal-archiving could not query the database, drill-recency the history): nothing was proved about it.
# TYPE firedrill_audit_errors_total counter
firedrill_audit_errors_total{source="archive",target="orders"} 1
firedrill_audit_errors_total{source="backup-age",target="orders"} 0
firedrill_audit_errors_total{source="backup-integrity",target="orders"} 0
firedrill_audit_errors_total{source="backup-size",target="orders"} 0
firedrill_audit_errors_total{source="copies-3-2-1",target="orders"} 1
firedrill_audit_errors_total{source="drill-recency",target="orders"} 0
firedrill_audit_errors_total{source="offsite",target="orders"} 2
firedrill_audit_errors_total{source="primary",target="orders"} 1
firedrill_audit_errors_total{source="snapshots",target="orders"} 0
firedrill_audit_errors_total{source="wal-archiving",target="orders"} 1
firedrill_audit_errors_total{source="wal-continuity",target="orders"} 0
# HELP firedrill_backup_age_seconds How old the newest good backup at this source is now: the time since firedrill_backup_last_timestamp_seconds, growing between audits; compare with firedrill_rpo_target_seconds (+Inf: the source holds no good backup; NaN: not read yet).
# TYPE firedrill_backup_age_seconds gauge
firedrill_backup_age_seconds{source="archive",target="orders"} NaN
firedrill_backup_age_seconds{source="offsite",target="orders"} NaN
firedrill_backup_age_seconds{source="primary",target="orders"} 7800
firedrill_backup_age_seconds{source="snapshots",target="orders"} +Inf
# HELP firedrill_wal_archive_failed_total Failed attempts to archive a WAL segment since PostgreSQL's statistics were last reset (pg_stat_archiver.failed_count, as of the last audit); any increase means archive_command failed. Absent until the first audit read it.
# TYPE firedrill_wal_archive_failed_total counter
firedrill_wal_archive_failed_total{target="orders"} 7
# HELP firedrill_backup_copies_required How many copies of the newest backup the target's policy requires (copies.minCopies).
# TYPE firedrill_backup_copies_required gauge
firedrill_backup_copies_required{target="orders"} 3
`, "firedrill_audit_errors_total", "firedrill_backup_age_seconds", "firedrill_wal_archive_failed_total", "firedrill_backup_copies_required")
}

// TestBackupAgeGrowsBetweenAudits: the age is computed at scrape time from the injected clock.
func TestBackupAgeGrowsBetweenAudits(t *testing.T) {
	clock := now
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.New(reg, []metrics.Target{orders()}, metrics.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveAudit("orders", readJSON[[]checks.Finding](t, "audit-findings.json"), time.Second)
	for _, tt := range []struct {
		at   time.Time
		want float64
	}{
		{now, 7800},
		{now.Add(time.Hour), 11400},
		// A backup dated ahead of the clock (within the audit's tolerance) is as good as new.
		{time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), 0},
	} {
		clock = tt.at
		want := `
# HELP firedrill_backup_age_seconds How old the newest good backup at this source is now: the time since firedrill_backup_last_timestamp_seconds, growing between audits; compare with firedrill_rpo_target_seconds (+Inf: the source holds no good backup; NaN: not read yet).
# TYPE firedrill_backup_age_seconds gauge
firedrill_backup_age_seconds{source="archive",target="orders"} NaN
firedrill_backup_age_seconds{source="offsite",target="orders"} NaN
firedrill_backup_age_seconds{source="primary",target="orders"} ` + num(tt.want) + `
firedrill_backup_age_seconds{source="snapshots",target="orders"} +Inf
`
		compare(t, reg, want, "firedrill_backup_age_seconds")
	}
}

// TestWALCountersAppearWithTheFirstReading: pg_stat_archiver's counters have no series until
// an audit read them. A series pre-initialised to 0 would jump to the archiver's whole history
// at the first audit after every restart: increase() would report every failure since the
// statistics reset as new, and WALArchivingFailing would page on a restart.
func TestWALCountersAppearWithTheFirstReading(t *testing.T) {
	reg, m := newMetrics(t, orders())
	n, err := testutil.GatherAndCount(reg, "firedrill_wal_archived_total", "firedrill_wal_archive_failed_total")
	if err != nil || n != 0 {
		t.Fatalf("before any audit: %d series (err %v), want none", n, err)
	}
	m.ObserveAudit("orders", readJSON[[]checks.Finding](t, "audit-findings.json"), time.Second)
	n, err = testutil.GatherAndCount(reg, "firedrill_wal_archived_total", "firedrill_wal_archive_failed_total")
	if err != nil || n != 2 {
		t.Fatalf("after an audit: %d series (err %v), want 2", n, err)
	}
}

func TestObserveSnapshot(t *testing.T) {
	taken := &reports.SnapshotResult{Target: "orders", Status: reports.SnapshotStatusComplete, Snapshot: &reports.SnapshotMetadata{
		ID: "20261123T020000Z", Target: "orders", Engine: "postgres", Driver: "local", FrozenSeconds: 1.25,
		TakenAt: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC), SizeBytes: 73400320,
	}}
	failed := &reports.SnapshotResult{Target: "orders", Status: reports.SnapshotResultError, Error: "while freezing orders: timeout"}
	head := `
# HELP firedrill_snapshot_frozen_seconds How long the target's last snapshot held its database frozen or in backup mode.
# TYPE firedrill_snapshot_frozen_seconds gauge
firedrill_snapshot_frozen_seconds{target="orders"} `
	tests := []struct {
		name  string
		snaps []*reports.SnapshotResult
		want  string
	}{
		{"taken", []*reports.SnapshotResult{taken}, head + `1.25
# HELP firedrill_snapshot_success 1 if the target's last snapshot was taken, 0 if it failed.
# TYPE firedrill_snapshot_success gauge
firedrill_snapshot_success{target="orders"} 1
# HELP firedrill_snapshot_last_success_timestamp_seconds When the target's last snapshot taken was cut (its recovery point), as a Unix time.
# TYPE firedrill_snapshot_last_success_timestamp_seconds gauge
firedrill_snapshot_last_success_timestamp_seconds{target="orders"} ` + ts("2026-11-23T02:00:00Z") + "\n"},
		{"failed after taken", []*reports.SnapshotResult{taken, failed}, head + `1.25
# HELP firedrill_snapshot_success 1 if the target's last snapshot was taken, 0 if it failed.
# TYPE firedrill_snapshot_success gauge
firedrill_snapshot_success{target="orders"} 0
# HELP firedrill_snapshot_last_success_timestamp_seconds When the target's last snapshot taken was cut (its recovery point), as a Unix time.
# TYPE firedrill_snapshot_last_success_timestamp_seconds gauge
firedrill_snapshot_last_success_timestamp_seconds{target="orders"} ` + ts("2026-11-23T02:00:00Z") + "\n"},
		{"failed first", []*reports.SnapshotResult{failed}, head + `NaN
# HELP firedrill_snapshot_success 1 if the target's last snapshot was taken, 0 if it failed.
# TYPE firedrill_snapshot_success gauge
firedrill_snapshot_success{target="orders"} 0
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, m := newMetrics(t, orders())
			for _, s := range tt.snaps {
				m.ObserveSnapshot(s)
			}
			compare(t, reg, tt.want, familiesIn(tt.want)...)
		})
	}
}

func TestSetTargets(t *testing.T) {
	billing := metrics.Target{Name: "billing", Engine: "mariadb", RPO: time.Hour, Sources: []string{"dumps"}}
	reg, m := newMetrics(t, orders(), billing)
	m.ObserveAudit("orders", readJSON[[]checks.Finding](t, "audit-findings.json"), time.Second)
	r := readJSON[reports.DrillResult](t, "drill-pass.json")
	m.ObserveDrill(&r)

	// Reload: billing is gone, orders lost its offsite source and its teardown phase and gained
	// a tape kind, and a new target appears.
	o := orders()
	o.Sources = []string{"primary", "snapshots", "archive"}
	o.Phases = []string{"select", "clone", "start-and-recovery"}
	o.CopyKinds = append(o.CopyKinds, "tape")
	o.RPO = 12 * time.Hour
	m.SetTargets([]metrics.Target{o, {Name: "users", Engine: "postgres"}})

	got, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range got {
		for _, mt := range mf.Metric {
			target, source := labelValue(mt.Label, "target"), labelValue(mt.Label, "source")
			switch {
			case target == "billing":
				t.Errorf("%s%v: a removed target's series remains", mf.GetName(), mt.Label)
			case target == "orders" && source == "offsite":
				t.Errorf("%s%v: a removed source's series remains", mf.GetName(), mt.Label)
			case target == "orders" && labelValue(mt.Label, "phase") == "teardown":
				t.Errorf("%s%v: a removed phase's series remains", mf.GetName(), mt.Label)
			}
		}
	}
	// What was known of kept label sets stays; new ones start unknown; objectives follow the config.
	compare(t, reg, `
# HELP firedrill_backup_copies Usable copies of the target's newest backup on each kind of media, as the last 3-2-1 audit counted them (the live database counts as one on disk when copies.liveDatabase is set); their sum is the number of copies.
# TYPE firedrill_backup_copies gauge
firedrill_backup_copies{kind="disk",target="orders"} 2
firedrill_backup_copies{kind="object-storage",target="orders"} 1
firedrill_backup_copies{kind="tape",target="orders"} NaN
# HELP firedrill_rpo_target_seconds The target's recovery point objective: the most data, in seconds, its backups may lose (the oldest the newest backup may be).
# TYPE firedrill_rpo_target_seconds gauge
firedrill_rpo_target_seconds{target="orders"} 43200
firedrill_rpo_target_seconds{target="users"} NaN
# HELP firedrill_drill_success 1 if the target's last restore drill passed, 0 if it failed or could not run (see the drill's result for which).
# TYPE firedrill_drill_success gauge
firedrill_drill_success{target="orders"} 1
firedrill_drill_success{target="users"} NaN
# HELP firedrill_wal_archived_total WAL segments PostgreSQL archived since its statistics were last reset (pg_stat_archiver.archived_count, as of the last audit). Absent until the first audit read it.
# TYPE firedrill_wal_archived_total counter
firedrill_wal_archived_total{target="orders"} 66
`, "firedrill_backup_copies", "firedrill_rpo_target_seconds", "firedrill_drill_success", "firedrill_wal_archived_total")

	// Removing every target leaves only the build information.
	m.SetTargets(nil)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 1 {
		t.Errorf("after removing every target: %d series (err %v), want 1 (firedrill_build_info)", n, err)
	}
}

func TestNames(t *testing.T) {
	reg, m := newMetrics(t, orders())
	m.ObserveAudit("orders", readJSON[[]checks.Finding](t, "audit-findings.json"), time.Second)
	got, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var gathered []string
	for _, mf := range got {
		gathered = append(gathered, mf.GetName())
	}
	slices.Sort(gathered)
	if !slices.Equal(gathered, metrics.Names()) {
		t.Errorf("gathered families\n  %v\nNames()\n  %v", gathered, metrics.Names())
	}
	for _, n := range metrics.Names() {
		if !strings.HasPrefix(n, "firedrill_") {
			t.Errorf("%s: not in the firedrill_ namespace", n)
		}
	}
}

func TestLint(t *testing.T) {
	reg, m := newMetrics(t, orders())
	r := readJSON[reports.DrillResult](t, "drill-pass.json")
	m.ObserveDrill(&r)
	m.ObserveAudit("orders", readJSON[[]checks.Finding](t, "audit-findings.json"), time.Second)
	m.ObserveSnapshot(&reports.SnapshotResult{Target: "orders", Status: reports.SnapshotStatusComplete, Snapshot: &reports.SnapshotMetadata{FrozenSeconds: 1}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestNew(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := metrics.New(reg, nil); err != nil {
		t.Fatal(err)
	}
	// A second set on the same registry collides: New says so rather than panicking.
	if _, err := metrics.New(reg, nil); err == nil {
		t.Error("New on a registry that already has firedrill's metrics: no error")
	}
}
