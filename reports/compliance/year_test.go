package compliance

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
	"github.com/firedrill/firedrill/reports/evidence"
)

// The synthetic year of one target, orders (RPO 24h, RTO 1h, a drill every 31 days), in 2026:
//   - a drill on the 15th of every month at 03:00, except July (missed); March's fails (amcheck)
//     and the drill a week later, on March 22nd, passes: 12 drills, 11 passing;
//   - an audit on the 1st and the 16th of every month: the backup is too old on May 1st (an
//     RPO breach of 15 days), WAL archiving warns on September 1st and fails on the 16th (one
//     incident until October 1st), and the 3-2-1 check fails on November 1st only;
//   - a snapshot on the 14th of every month, 1 GiB growing by 64 MiB a month.
var (
	yearFrom = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	yearTo   = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	yearNow  = time.Date(2027, 1, 5, 9, 0, 0, 0, time.UTC)
	yearPol  = TargetPolicy{Name: "orders", Engine: "postgres", RPO: 24 * time.Hour, RTO: time.Hour, DrillEvery: 31 * 24 * time.Hour,
		CopyPolicy: "3 copies, 2 media, 1 offsite, 1 immutable"}
	objs = evidence.Objectives{RPOSeconds: 86400, RTOSeconds: 3600, DrillEverySeconds: 31 * 86400}
)

// chain numbers the records in order, as a store would.
type chain struct {
	target string
	recs   []Stored
}

func (c *chain) add(r evidence.Record) {
	r.SchemaVersion, r.Target, r.Objectives, r.ToolVersion, r.ConfigDigest = evidence.SchemaVersion, c.target, objs, "v0.9.0", "sha256:c0ffee"
	r.Seq = int64(len(c.recs) + 1)
	if n := len(c.recs); n > 0 {
		r.Prev = c.recs[n-1].Digest
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d/%s", c.target, r.Seq, r.ID)))
	c.recs = append(c.recs, Stored{Record: r, Digest: hex.EncodeToString(sum[:]), Signed: true, KeyID: "ed25519:4f2a9c",
		Path: fmt.Sprintf("/var/lib/firedrill/history/evidence/%s/%012d.json", c.target, r.Seq)})
}

func drillRecord(at time.Time, rto float64, fail bool) evidence.Record {
	id := at.Format("20060102T150405Z") + "-d1"
	d := &reports.DrillResult{SchemaVersion: reports.SchemaVersion, ID: id, Target: "orders", Engine: "postgres",
		StartedAt: at, FinishedAt: at.Add(time.Duration(rto) * time.Second), Status: reports.StatusPass,
		Snapshot: &reports.SnapshotRef{ID: at.AddDate(0, 0, -1).Format("20060102T150405Z") + "-s1", TakenAt: at.AddDate(0, 0, -1), SizeBytes: 1 << 30, AgeSeconds: 86400},
		RTO:      reports.RTO{TargetSeconds: 3600, ActualSeconds: rto, Met: rto <= 3600},
		Checks:   []checks.Finding{checks.Passf("amcheck", checks.Evidence{"indexes": 42}, "42 indexes verified")},
	}
	if fail {
		d.Checks = append(d.Checks, checks.Failf("amcheck", checks.Evidence{"index": "orders_pkey"}, "index orders_pkey: item order invariant violated"))
		d.Status = reports.StatusFail
	}
	return evidence.Record{Kind: evidence.KindDrill, ID: id, StartedAt: d.StartedAt, FinishedAt: d.FinishedAt, Status: string(d.Status),
		Where: map[string]string{"host": "drill-1"}, Drill: d}
}

func auditRecord(at time.Time, ageSeconds float64, wal, copies checks.Status) evidence.Record {
	age := checks.Passf(policy.CheckBackupAge, checks.Evidence{"rpo": "24h0m0s", "sources": []map[string]any{{"source": "primary", "ageSeconds": ageSeconds}}}, "newest good backup %s old", human(ageSeconds))
	if ageSeconds > 86400 {
		age.Status, age.Message = checks.Fail, fmt.Sprintf("primary: newest good backup is %s old (RPO 24h)", human(ageSeconds))
	}
	fs := []checks.Finding{age,
		{Check: policy.CheckWALArchiving, Status: wal, Message: "archiver: " + wal.String()},
		{Check: policy.CheckCopies, Status: copies, Message: "3-2-1: " + copies.String()},
		checks.Passf(policy.CheckBackupSize, checks.Evidence{"sources": []map[string]any{{"source": "primary", "newestBytes": 1 << 30}}}, "size steady"),
	}
	return evidence.Record{Kind: evidence.KindAudit, ID: at.Format("20060102T150405Z") + "-a", StartedAt: at, FinishedAt: at.Add(20 * time.Second),
		Status: evidence.AuditStatus(fs), Audit: fs}
}

func snapshotRecord(at time.Time, size int64) evidence.Record {
	m := &reports.SnapshotMetadata{ID: at.Format("20060102T150405Z") + "-s1", Target: "orders", Engine: "postgres", TakenAt: at, StartedAt: at, FinishedAt: at.Add(time.Minute), SizeBytes: size}
	return evidence.Record{Kind: evidence.KindSnapshot, ID: m.ID, StartedAt: at, FinishedAt: m.FinishedAt, Status: evidence.StatusPass,
		Snapshot: &reports.SnapshotResult{Target: "orders", Status: reports.SnapshotStatusComplete, Snapshot: m}}
}

// syntheticYear returns the year's records of orders, oldest first.
func syntheticYear() []Stored {
	c := &chain{target: "orders"}
	for m := time.January; m <= time.December; m++ {
		first := time.Date(2026, m, 1, 6, 0, 0, 0, time.UTC)
		age := 7200.0
		if m == time.May {
			age = 30 * 3600
		}
		wal := checks.Pass
		if m == time.September {
			wal = checks.Warn
		}
		copies := checks.Pass
		if m == time.November {
			copies = checks.Fail
		}
		c.add(auditRecord(first, age, wal, copies))
		c.add(snapshotRecord(time.Date(2026, m, 14, 2, 0, 0, 0, time.UTC), 1<<30+int64(m-1)*64<<20))
		if m != time.July {
			at := time.Date(2026, m, 15, 3, 0, 0, 0, time.UTC)
			c.add(drillRecord(at, 600+float64(m)*30, m == time.March))
			if m == time.March {
				c.add(drillRecord(at.AddDate(0, 0, 7), 600+float64(m)*30, false))
			}
		}
		wal = checks.Pass
		if m == time.September {
			wal = checks.Fail
		}
		c.add(auditRecord(time.Date(2026, m, 16, 6, 0, 0, 0, time.UTC), 7200, wal, checks.Pass))
	}
	return c.recs
}
