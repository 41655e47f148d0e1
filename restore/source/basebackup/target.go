package basebackup

import (
	"context"
	"fmt"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/restore/engine/postgres"
	"github.com/firedrill/firedrill/restore/source/walarchive"
)

// targetCheck records the point recovery reached (the last replayed LSN and transaction) and
// judges it: for target latest, now minus the last recoverable transaction is the achieved
// RPO, compared with objectives.rpo.
type targetCheck struct {
	target     postgres.RecoveryTarget
	plan       *walarchive.Plan
	backupStop time.Time
}

// NewTargetCheck is the recovery-target check of a copy recovered along plan from a backup
// that ended at backupStop.
func NewTargetCheck(target postgres.RecoveryTarget, plan *walarchive.Plan, backupStop time.Time) checks.Check {
	return &targetCheck{target: target, plan: plan, backupStop: backupStop}
}

func (c *targetCheck) Name() string      { return TargetName }
func (c *targetCheck) Engines() []string { return []string{"postgres"} }

func (c *targetCheck) Run(ctx context.Context, env *checks.Env) []checks.Finding {
	ev := checks.Evidence{"target": c.target.String(), "archiveLast": c.plan.Last, "archiveEnd": c.plan.End.String()}
	conn, err := env.DB.Connect(ctx, "postgres")
	if err != nil {
		return []checks.Finding{checks.Errorf(TargetName, ev, "could not connect to read the point recovery reached: %v", err)}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var lsn string
	var last *time.Time
	var tli int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(pg_last_wal_replay_lsn()::text, ''), pg_last_xact_replay_timestamp(),
		(SELECT timeline_id FROM pg_control_checkpoint())`).Scan(&lsn, &last, &tli); err != nil {
		return []checks.Finding{checks.Errorf(TargetName, ev, "could not read the point recovery reached: %v", err)}
	}
	ev["lastReplayLsn"], ev["timelineAfterPromotion"] = lsn, tli
	point, what := c.backupStop, "no transaction was replayed after the backup, which ended"
	if last != nil {
		point, what = last.UTC(), "the last replayed transaction committed"
		ev["lastReplayTime"] = point
	}
	if !point.IsZero() {
		ev[checks.EvidenceRecoveryPoint] = point
	}
	now := time.Now
	if env.Now != nil {
		now = env.Now
	}
	switch c.target.Kind {
	case postgres.TargetTime:
		if last != nil && last.After(c.target.Time) {
			return []checks.Finding{checks.Failf(TargetName, ev, "recovery replayed a transaction of %s, past the target %s", point.Format(time.RFC3339Nano), c.target)}
		}
		return []checks.Finding{checks.Passf(TargetName, ev, "recovered to target time %s: %s at %s (LSN %s)", c.target, what, point.Format(time.RFC3339Nano), lsn)}
	case postgres.TargetLSN:
		got, err1 := walarchive.ParseLSN(lsn)
		want, err2 := walarchive.ParseLSN(c.target.LSN)
		if err1 == nil && err2 == nil && got < want {
			return []checks.Finding{checks.Failf(TargetName, ev, "recovery stopped at %s, before the target LSN %s", lsn, c.target.LSN)}
		}
		return []checks.Finding{checks.Passf(TargetName, ev, "recovered to target LSN %s (replayed up to %s)", c.target.LSN, lsn)}
	case postgres.TargetImmediate:
		return []checks.Finding{checks.Passf(TargetName, ev, "recovered to the base backup's consistency point (LSN %s)", lsn)}
	}
	if point.IsZero() {
		return []checks.Finding{checks.Passf(TargetName, ev, "recovered to the end of the archive (LSN %s); no transaction time to measure the RPO by", lsn)}
	}
	rpo := now().Sub(point)
	ev["achievedRpoSeconds"] = rpo.Seconds()
	if env.RPO > 0 {
		ev["rpoSeconds"] = env.RPO.Seconds()
	}
	if env.RPO > 0 && rpo > env.RPO {
		return []checks.Finding{checks.Failf(TargetName, ev, "recovered to the end of the archive (LSN %s): %s at %s, an achieved RPO of %s, worse than the objective of %s",
			lsn, what, point.Format(time.RFC3339), checks.ShortDuration(rpo), checks.ShortDuration(env.RPO))}
	}
	return []checks.Finding{checks.Passf(TargetName, ev, "recovered to the end of the archive (LSN %s): %s at %s, an achieved RPO of %s%s",
		lsn, what, point.Format(time.RFC3339), checks.ShortDuration(rpo), within(env.RPO))}
}

func within(rpo time.Duration) string {
	if rpo <= 0 {
		return ""
	}
	return fmt.Sprintf(", within the objective of %s", checks.ShortDuration(rpo))
}
