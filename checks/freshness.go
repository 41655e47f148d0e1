package checks

import (
	"context"
	"time"
)

// FreshnessName is the finding name of the freshness check.
const FreshnessName = "freshness"

// EvidenceRecoveryPoint is the evidence key holding the recovery point (a time.Time).
const EvidenceRecoveryPoint = "recoveryPoint"

func init() {
	Register(FreshnessName, 40, func(c Config) []Check {
		if c.Freshness == nil {
			return nil
		}
		// One freshness check per engine: a query (SQL) or a key (Redis).
		var out []Check
		if c.Freshness.Query != "" {
			out = append(out, &Freshness{Query: c.Freshness.Query, Database: c.Freshness.Database},
				&MariaDBFreshness{Query: c.Freshness.Query, Database: c.Freshness.Database})
		}
		if c.Freshness.Key != "" {
			out = append(out, &RedisFreshness{Key: c.Freshness.Key, DB: c.Freshness.DB})
		}
		return out
	})
}

// Freshness runs a query returning the newest timestamp in the restored data: that is the
// data's recovery point, and its age at drill time is held to the RPO.
type Freshness struct {
	Query    string
	Database string
}

// Name implements Check.
func (f *Freshness) Name() string { return FreshnessName }

// Engines implements Check: the query is PostgreSQL SQL, run over pgx (another engine needs its own dialect and driver).
func (*Freshness) Engines() []string { return postgresOnly() }

// Run implements Check.
func (f *Freshness) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	db := f.Database
	if db == "" {
		db = "postgres"
	}
	ev := Evidence{"query": f.Query, "database": db, "rpoSeconds": env.RPO.Seconds()}
	fin := func(x Finding) []Finding { x.Seconds = time.Since(started).Seconds(); return []Finding{x} }
	conn, err := env.DB.Connect(ctx, db)
	if err != nil {
		return fin(Errorf(FreshnessName, ev, "could not connect to database %s: %v", db, err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var ts *time.Time
	if err := conn.QueryRow(ctx, f.Query).Scan(&ts); err != nil {
		return fin(queryFailed(FreshnessName, ev, err, "query failed (it must return one timestamp)"))
	}
	if ts == nil {
		return fin(Failf(FreshnessName, ev, "query returned NULL: the restored data has no rows to date it by"))
	}
	return fin(recoveryPointFinding(env, ev, *ts))
}

// recoveryPointFinding holds the data's newest timestamp, its recovery point, to the RPO at
// drill time: every engine's freshness check ends here.
func recoveryPointFinding(env *Env, ev Evidence, ts time.Time) Finding {
	now := env.Now()
	age := now.Sub(ts)
	ev[EvidenceRecoveryPoint] = ts.UTC()
	ev["drillTime"] = now.UTC()
	ev["ageSeconds"] = age.Seconds()
	if age > env.RPO {
		return Failf(FreshnessName, ev, "newest data is %s old at drill time, beyond the RPO of %s", ShortDuration(age.Round(time.Second)), ShortDuration(env.RPO))
	}
	return Passf(FreshnessName, ev, "newest data is %s old at drill time, within the RPO of %s", ShortDuration(age.Round(time.Second)), ShortDuration(env.RPO))
}
