package integration

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/firedrill/firedrill/audit"
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
)

// The WAL-archiving check against a real PostgreSQL: archiving that works passes; an idle
// server whose last archive is far older than the RPO is not an alarm; the same server with
// new WAL is; archive_command = 'false' after some writes fails with the failure count and
// times as evidence. Ages come from the injected clock: nothing sleeps to grow old.
func TestAuditWALArchiving(t *testing.T) {
	// autovacuum off: it would write WAL on its own and make "idle" depend on timing.
	pg := harness.StartPostgres(t, harness.PostgresOptions{Archive: true, Settings: map[string]string{"autovacuum": "off"}})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { conn.Close(context.WithoutCancel(ctx)) }()
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// waitArchiver polls pg_stat_archiver until done holds: the archiver runs on its own.
	waitArchiver := func(what string, done func(audit.ArchiverState) bool) audit.ArchiverState {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			st, err := audit.ReadArchiver(ctx, conn, false)
			if err != nil {
				t.Fatal(err)
			}
			if done(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("archiver never %s: %+v", what, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	rpo := time.Hour
	spec := policy.WALAudit{MaxReady: 16, IdleWALBytes: policy.DefaultAuditIdleWALBytes}
	expect := func(name string, st audit.ArchiverState, now time.Time, status checks.Status, reason string) checks.Finding {
		t.Helper()
		f := audit.EvaluateWAL(st, rpo, spec, now)
		r, _ := f.Evidence["reasons"].([]string)
		if f.Status != status || (reason != "" && !slices.Contains(r, reason)) {
			t.Errorf("%s: %s %v (%s), want %s %s\nstate: %+v", name, f.Status, r, f.Message, status, reason, st)
		} else {
			t.Logf("%s: %s: %s", name, f.Status, f.Message)
		}
		return f
	}

	// The harness passes archive_command as "-c" on the command line, which outranks ALTER
	// SYSTEM: move it to postgresql.auto.conf and restart, so the test can break it as an
	// operator would.
	var cmd string
	if err := conn.QueryRow(ctx, "SHOW archive_command").Scan(&cmd); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET archive_command = "+quote(cmd)); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	delete(pg.Settings, "archive_command")
	if err := pg.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pg.WaitReady(ctx, "postgres", nil); err != nil {
		t.Fatal(err)
	}
	if conn, err = pgx.Connect(ctx, pg.DSN("postgres")); err != nil {
		t.Fatal(err)
	}

	exec("CREATE TABLE t (id int, pad text)")
	exec("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
	var switched string
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&switched); err != nil {
		t.Fatal(err)
	}
	st := waitArchiver("archived "+switched, func(s audit.ArchiverState) bool { return s.LastArchivedWAL >= switched })
	expect("working archive_command", st, time.Now(), checks.Pass, "")

	// Idle: nothing written since the switch. Three RPOs later, still not an alarm.
	st, err = audit.ReadArchiver(ctx, conn, false)
	if err != nil {
		t.Fatal(err)
	}
	expect("idle server, last archive 3 RPOs old", st, time.Now().Add(3*rpo), checks.Pass, "")

	// The same server with new WAL since: now the old archive is data at risk.
	exec("INSERT INTO t SELECT g, repeat('y', 200) FROM generate_series(1, 5000) g")
	st, err = audit.ReadArchiver(ctx, conn, false)
	if err != nil {
		t.Fatal(err)
	}
	expect("new WAL, last archive 3 RPOs old", st, time.Now().Add(3*rpo), checks.Fail, audit.ReasonArchiveTooOld)
	expect("new WAL, last archive recent", st, time.Now(), checks.Pass, "")

	// archive_command = 'false': the next segment cannot be archived.
	exec("ALTER SYSTEM SET archive_command = 'false'")
	exec("SELECT pg_reload_conf()")
	exec("INSERT INTO t SELECT g, repeat('z', 200) FROM generate_series(1, 5000) g")
	var failing string
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&failing); err != nil {
		t.Fatal(err)
	}
	st = waitArchiver("failed on "+failing, func(s audit.ArchiverState) bool { return s.FailedCount > 0 && s.LastFailedWAL == failing })
	f := expect("archive_command = 'false'", st, time.Now(), checks.Fail, audit.ReasonArchiveFailing)
	ev, _ := f.Evidence["archiver"].(audit.ArchiverState)
	if ev.FailedCount < 1 || ev.LastFailedTime == nil || ev.LastArchivedTime == nil || !ev.LastFailedTime.After(*ev.LastArchivedTime) || ev.LastFailedWAL != failing {
		t.Errorf("evidence lacks failed_count and times: %+v", ev)
	}

	// The same through the auditor, as firedrill audit runs it (connection from the target).
	cfg, err := policy.Parse(t.TempDir()+"/firedrill.yaml", []byte(`targets:
  - name: orders
    connection:
      dsn: "`+pg.DSN("postgres")+`"
    snapshot:
      local:
        dataDir: `+pg.DataDir+`
        repository: `+t.TempDir()+`
    objectives:
      rpo: 1h
    audit:
      skip: [backup-age, backup-size, copies-3-2-1, drill-recency]
`))
	if err != nil {
		t.Fatal(err)
	}
	rep := (&audit.Auditor{Now: time.Now}).Audit(ctx, cfg, cfg.Targets)
	if fs := rep.Targets[0].Findings; len(fs) != 1 || fs[0].Check != policy.CheckWALArchiving || fs[0].Status != checks.Fail || !rep.Failed() {
		t.Errorf("auditor findings = %+v, want one failed wal-archiving", fs)
	}
	// Repaired: the archiver catches up, and the check passes again.
	exec("ALTER SYSTEM SET archive_command = " + quote(cmd))
	exec("SELECT pg_reload_conf()")
	st = waitArchiver("recovered", func(s audit.ArchiverState) bool { return s.LastArchivedWAL >= failing })
	expect("repaired", st, time.Now(), checks.Pass, "")
}

// quote is a SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
