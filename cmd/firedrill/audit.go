package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/firedrill/firedrill/audit"
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/reports/history"
	"github.com/firedrill/firedrill/reports/render"
)

func newAuditCmd(g *globals) *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check WAL archiving, backup age and size, 3-2-1 copies and drill recency, without restoring",
		Long: `Audit the live estate of one target (--target) or of every target. Nothing is restored, so
it is cheap enough to run every few minutes:

  wal-archiving  pg_stat_archiver: archiving on and configured, no segment stuck after a
                 failed attempt beyond wal.failureGrace (failures the archiver got past are
                 a warning, counted since the previous audit), last archive within the RPO
                 unless the server is idle, few .ready segments waiting, optionally standby
                 replay lag; with audit.wal.archive, the last segment is in the archive and
                 none is missing since the newest base backup
  backup-age     the newest good backup of each source (audit.sources) within the RPO
  backup-integrity  no damaged or foreign snapshot in the target's local snapshot
                 repositories (unreadable meta.json, another target's): they are never
                 restored nor counted as backups, so this is where they show
  backup-size    the newest backup not empty, not far smaller (a fail) or larger (a warning)
                 than the median of the previous ones
  copies-3-2-1   the newest backup has enough copies, on enough media, offsite and immutable
                 (S3 Object Lock read from the bucket), and every copy matches (by the
                 store's checksums: copies.verify) and is fresh
  drill-recency  the last passing drill is younger than objectives.drillEvery, and the last
                 drill met its RTO

One row per target and check. A source that cannot be read (auth, network, permissions) is
reported as an error row naming it and why.

--output json writes {"schemaVersion": 1, "generatedAt", "targets": [{"target", "findings"}]};
every finding has target, check, status (pass, warn, fail, error), message (the one-line
reason), reasons (codes such as too-old, zero-byte, size-drop, drill-too-old, rto-missed,
unreadable; [] when it passed), cause (with unreadable: auth, network, not-found, permission,
timeout) and evidence (the numbers compared). Fields are only ever added.

` + exitCodesHelp,
		Example: `  firedrill audit
  firedrill audit --target orders --output json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, cfg, log, err := g.open()
			if err != nil {
				return err
			}
			targets, err := pickTargets(cfg, target)
			if err != nil {
				return err
			}
			started := time.Now()
			rep := runAudit(cmd.Context(), cfg, targets, log)
			var recErr error
			for _, tr := range rep.Targets {
				recErr = errors.Join(recErr, recordAudit(cmd.Context(), cfg, tr.Target, started, tr.Findings))
			}
			if err := printAudit(g, f, rep); err != nil {
				return err
			}
			if err := auditErr(rep); err != nil || recErr == nil {
				return err // a proven failure outranks evidence that could not be recorded
			}
			return recErr
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "target to audit (default: every target)")
	return cmd
}

// runAudit audits targets with the clients built once for this command.
func runAudit(ctx context.Context, cfg *policy.Config, targets []policy.Target, log *slog.Logger) *audit.Report {
	cl := newClients()
	a := &audit.Auditor{
		Now: time.Now, Log: log, History: history.New(cfg.History.Dir), State: audit.NewFileState(audit.StateDirFor(cfg.History.Dir)),
		Snapshots: func(_ context.Context, t *policy.Target) (audit.SnapshotLister, error) {
			if t.Restore.Source.ListsBackups() {
				return drillSource(t), nil // the backups its drills restore
			}
			return store(cl, t)
		},
	}
	return a.Audit(ctx, cfg, targets)
}

// printAudit writes one row per target and check, or the report as JSON.
func printAudit(g *globals, f render.Format, rep *audit.Report) error {
	if f == render.FormatJSON {
		return render.JSON(g.stdout, rep)
	}
	var rows []render.AuditRow
	for _, t := range rep.Targets {
		for _, fd := range t.Findings {
			rows = append(rows, render.AuditRow{Target: t.Target, Finding: fd})
		}
	}
	return render.Audit(g.stdout, rows)
}

// auditErr turns an audit's outcome into the command's error (and so its exit code).
func auditErr(rep *audit.Report) error {
	switch {
	case rep.Failed():
		return errChecksFailed
	case rep.CouldNotCheck():
		return errCouldNotCheck
	}
	return nil
}
