package audit

import (
	"fmt"
	"strings"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
)

// Reasons the backup-age check names.
const (
	ReasonNoBackup   = "no-backup"
	ReasonTooOld     = "too-old"
	ReasonUnreadable = "unreadable"
	// ReasonFutureDated: a backup is dated further ahead of the audit's clock than
	// audit.futureTolerance. It is left out (it can never be "the newest"): a warning, since
	// clock skew or a mis-set restore of file times proves nothing about the backups themselves.
	ReasonFutureDated = "future-dated"
)

// CheckBackupAge holds the newest good backup of every source against the RPO: a source whose
// newest backup of at least the size floor is older than rpo at now fails.
func CheckBackupAge(sources []*SourceState, rpo time.Duration, now time.Time) checks.Finding {
	var p problems
	var rows []map[string]any
	var okParts []string
	for _, s := range sources {
		row, ok := s.row(&p)
		rows = append(rows, row)
		if !ok {
			continue
		}
		row["count"] = s.Summary.Count
		if fu := s.Summary.FutureNewest; fu != nil {
			row["future"], row["futureNewest"], row["futureTime"] = s.Summary.Future, fu.Key, fu.Time
			tol := ""
			if !s.Summary.notAfter.IsZero() {
				tol = ", beyond the " + human(s.Summary.notAfter.Sub(now)) + " tolerance"
			}
			p.warn(ReasonFutureDated, "%s: %d backup(s) dated in the future and ignored (%s is %s ahead%s: clock skew or mis-set times?)",
				s.Name, s.Summary.Future, fu.Key, age(fu.Time.Sub(now)), tol)
		}
		g := s.Summary.NewestGood
		if g == nil {
			row["status"] = "fail"
			if s.Summary.Count == 0 {
				p.fail(ReasonNoBackup, "%s: no backups at %s", s.Name, s.Where)
			} else {
				p.fail(ReasonNoBackup, "%s: none of %d backups is a good one (all below the size floor)", s.Name, s.Summary.Count)
			}
			continue
		}
		// Dated ahead within the tolerance: as good as new.
		a := max(now.Sub(g.Time), 0)
		row["newest"], row["time"], row["ageSeconds"] = g.Key, g.Time, a.Seconds()
		if a > rpo {
			row["status"] = "fail"
			p.fail(ReasonTooOld, "%s: newest good backup %s is %s old (RPO %s)", s.Name, g.Key, age(a), human(rpo))
			continue
		}
		row["status"] = "pass"
		okParts = append(okParts, fmt.Sprintf("%s %s ago", s.Name, age(a)))
	}
	ev := checks.Evidence{"rpo": rpo.String(), "now": now, "sources": rows}
	ok := "no backup sources configured"
	if len(okParts) > 0 {
		ok = "newest good backups within RPO " + human(rpo) + ": " + strings.Join(okParts, ", ")
	}
	return p.finding(policy.CheckBackupAge, ev, ok)
}
