package checks

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// RowCountsName is the finding name of the row count check.
const RowCountsName = "row-counts"

func init() {
	Register(RowCountsName, 20, func(c Config) []Check {
		// One implementation per engine under one name (BuildFor skips the name only when
		// none serves the drilled engine).
		if c.RowCounts == nil {
			return []Check{&RowCounts{}, &MariaDBRowCounts{}, &MongoCounts{}}
		}
		if !Enabled(c.RowCounts.Enabled, true) {
			return nil
		}
		return []Check{&RowCounts{Min: c.RowCounts.Min}, &MariaDBRowCounts{Min: c.RowCounts.Min}, &MongoCounts{Min: c.RowCounts.Min}}
	})
}

// RowCounts counts the rows of every user table exactly (the counts are evidence that the
// copy is usable, and a baseline to compare drills by), and holds tables to minimums.
type RowCounts struct {
	// Min maps schema.table (database postgres) or database.schema.table to a minimum.
	Min map[string]int64
}

// Name implements Check.
func (r *RowCounts) Name() string { return RowCountsName }

// Engines implements Check: the tables are listed from PostgreSQL's catalogs and counted over pgx.
// OnByDefault implements onByDefault.
func (*RowCounts) OnByDefault() bool { return true }

func (*RowCounts) Engines() []string { return postgresOnly() }

const tablesSQL = `
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY c.relpages DESC`

// Run implements Check.
func (r *RowCounts) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	dbs, err := env.DB.Databases(ctx)
	if err != nil {
		return []Finding{Errorf(RowCountsName, nil, "could not list databases: %v", err)}
	}
	counts := map[string]int64{}
	var mu sync.Mutex
	var errs []string
	// damaged are the tables PostgreSQL refused to read because their data is damaged: proof
	// that the copy is unfit, not a count that could not be taken.
	var damaged []damagedTable
	for _, db := range dbs {
		tables, err := listTables(ctx, env.DB, db)
		if ok, why := Damage(err); ok {
			damaged = append(damaged, damagedTable{Table: db + ".(catalog)", DamageReason: why})
			continue
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		err = forEach(ctx, env.DB, db, env.Parallel, tables, func(ctx context.Context, conn *pgx.Conn, t [2]string) {
			var n int64
			// No JIT: compiling the plan costs more than it saves on a count.
			_, err := conn.Exec(ctx, "SET jit = off")
			if err == nil {
				err = conn.QueryRow(ctx, "SELECT count(*) FROM ONLY "+pgx.Identifier{t[0], t[1]}.Sanitize()).Scan(&n)
			}
			mu.Lock()
			defer mu.Unlock()
			name := db + "." + t[0] + "." + t[1]
			if ok, why := Damage(err); ok {
				damaged = append(damaged, damagedTable{Table: name, DamageReason: why})
				return
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %s", name, pgMessage(err)))
				return
			}
			counts[name] = n
		})
		if ok, why := Damage(err); ok {
			damaged = append(damaged, damagedTable{Table: db, DamageReason: why})
		} else if err != nil {
			errs = append(errs, err.Error())
		}
	}
	slices.SortFunc(damaged, func(a, b damagedTable) int { return strings.Compare(a.Table, b.Table) })
	var total int64
	for _, n := range counts {
		total += n
	}
	ev := Evidence{"tables": len(counts), "rows": total, "counts": counts}
	short := belowMin(r.Min, counts, func(key string) string {
		if strings.Count(key, ".") == 1 {
			return "postgres." + key
		}
		return key
	}, func(table string) bool {
		return slices.ContainsFunc(damaged, func(d damagedTable) bool { return d.Table == table })
	}, "")
	f := Finding{Check: RowCountsName, Evidence: ev, Seconds: time.Since(started).Seconds()}
	if len(short) > 0 {
		ev["minimums"] = r.Min
		ev["violations"] = short
	}
	if len(errs) > 0 {
		ev["errors"] = firstN(errs, 50)
	}
	switch {
	case len(damaged) > 0:
		ev["damaged"] = firstN(damaged, 50)
		ev["sqlstate"] = damaged[0].SQLState
		f.Status = Fail
		f.Message = fmt.Sprintf("%d table(s) could not be read because PostgreSQL reports their data damaged, first %s: %s", len(damaged), damaged[0].Table, damaged[0].DamageReason)
	case len(short) > 0:
		f.Status, f.Message = Fail, short[0]
	case len(errs) > 0:
		ev["errors"] = firstN(errs, 50)
		f.Status, f.Message = Error, "could not count every table: "+errs[0]
	default:
		f.Status = Pass
		f.Message = fmt.Sprintf("%d rows in %d tables across %d databases", total, len(counts), len(dbs))
	}
	return []Finding{f}
}

func listTables(ctx context.Context, db DB, database string) ([][2]string, error) {
	conn, err := db.Connect(ctx, database)
	if err != nil {
		return nil, fmt.Errorf("while connecting to database %s: %w", database, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, tablesSQL)
	if err != nil {
		return nil, wrapPG(err, "while listing tables of %s", database)
	}
	var out [][2]string
	for rows.Next() {
		var t [2]string
		if err := rows.Scan(&t[0], &t[1]); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, t)
	}
	rows.Close()
	return out, rows.Err()
}

// damagedTable is a table (database.schema.table) PostgreSQL refused to count, and why.
// belowMin holds row counts (by table) to minimums (by configured key, which resolve turns
// into a table): each table that is missing, could not be counted because damaged, or has
// fewer rows, in key order. keyHint follows "table not found" (how keys name tables).
func belowMin(min, counts map[string]int64, resolve func(key string) string, damaged func(table string) bool, keyHint string) []string {
	var short []string
	for _, key := range slices.Sorted(maps.Keys(min)) {
		table := resolve(key)
		n, ok := counts[table]
		switch {
		case !ok && damaged(table):
			short = append(short, fmt.Sprintf("%s: could not be counted, its data is damaged (expected at least %d rows)", table, min[key]))
		case !ok:
			short = append(short, fmt.Sprintf("%s: table not found in the restored copy (expected at least %d rows%s)", table, min[key], keyHint))
		case n < min[key]:
			short = append(short, fmt.Sprintf("%s: %d rows, expected at least %d", table, n, min[key]))
		}
	}
	return short
}

type damagedTable struct {
	Table string `json:"table"`
	DamageReason
}
