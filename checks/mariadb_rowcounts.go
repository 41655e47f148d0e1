package checks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MariaDBRowCounts is the row count check of a MariaDB/MySQL copy: SELECT COUNT(*) of every
// base table outside the system databases (exact, unlike information_schema's estimates),
// held to minimums keyed "database.table".
type MariaDBRowCounts struct {
	Min map[string]int64
}

// Name implements Check: one name with PostgreSQL's row counts, so rowCounts configures both.
func (*MariaDBRowCounts) Name() string { return RowCountsName }

// Engines implements Check.
func (*MariaDBRowCounts) Engines() []string { return mariadbOnly() }

// OnByDefault implements onByDefault.
func (*MariaDBRowCounts) OnByDefault() bool { return true }

// Run implements Check.
func (r *MariaDBRowCounts) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	ev := Evidence{}
	tables, stop := mariadbTablesFor(ctx, env, RowCountsName, ev)
	if stop != nil {
		return fin(*stop)
	}
	counts := map[string]int64{}
	var mu sync.Mutex
	var damaged []tableProblem
	var errs []string
	forEachMariaDB(ctx, env.Parallel, tables, func(ctx context.Context, t mariadbTable) {
		var n int64
		err := env.SQL.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.quoted()).Scan(&n)
		mu.Lock()
		defer mu.Unlock()
		if ok, why := mariadbDamage(err); ok {
			why.Table = t.String()
			damaged = append(damaged, why)
			return
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", t, err))
			return
		}
		counts[t.String()] = n
	})
	if err := ctx.Err(); err != nil {
		return fin(Errorf(RowCountsName, ev, "interrupted: %v", err))
	}
	slices.SortFunc(damaged, func(a, b tableProblem) int { return strings.Compare(a.Table, b.Table) })
	var total int64
	dbs := map[string]bool{}
	for _, t := range tables {
		dbs[t.Schema] = true
	}
	for _, n := range counts {
		total += n
	}
	ev["tables"], ev["rows"], ev["counts"] = len(counts), total, counts
	short := belowMin(r.Min, counts, func(key string) string { return key }, func(table string) bool {
		return slices.ContainsFunc(damaged, func(d tableProblem) bool { return d.Table == table })
	}, "; keys are database.table")
	if len(short) > 0 {
		ev["minimums"] = r.Min
		ev["violations"] = short
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		ev["errors"] = firstN(errs, 50)
	}
	switch {
	case len(damaged) > 0:
		ev["damaged"] = firstN(damaged, 50)
		return fin(Failf(RowCountsName, ev, "%d table(s) could not be read because MariaDB reports their data damaged, first %s: %s", len(damaged), damaged[0].Table, damaged[0].Message))
	case len(short) > 0:
		return fin(Failf(RowCountsName, ev, "%s", short[0]))
	case len(errs) > 0:
		return fin(Errorf(RowCountsName, ev, "could not count every table: %s", errs[0]))
	}
	return fin(Passf(RowCountsName, ev, "%d rows in %d tables across %d databases", total, len(counts), len(dbs)))
}
