package checks

import (
	"cmp"
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
	// ChunkBlocks is the largest block range one count reads; 0: countChunkBlocks.
	ChunkBlocks int64
}

// Name implements Check.
func (r *RowCounts) Name() string { return RowCountsName }

// Engines implements Check: the tables are listed from PostgreSQL's catalogs and counted over pgx.
// OnByDefault implements onByDefault.
func (*RowCounts) OnByDefault() bool { return true }

func (*RowCounts) Engines() []string { return postgresOnly() }

// Concurrent implements Concurrent: the counts' queries share the Env's slots and write
// nothing in the Env.
func (*RowCounts) Concurrent() bool { return true }

const tablesSQL = `
SELECT n.nspname, c.relname, pg_relation_size(c.oid) / current_setting('block_size')::bigint,
       current_setting('server_version_num')::int
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY 3 DESC`

// countChunkBlocks is the largest block range one count reads: a large table is counted in
// ranges (TID range scans, PostgreSQL 14 and later) spread over the connections, so that one
// big table does not leave the other connections idle. Every range reads its heap blocks,
// as one sequential scan would.
const countChunkBlocks = 16384

// countJob counts a table's rows, or those in blocks [start, end) (end -1: to the end).
type countJob struct {
	schema, table string
	start, end    int64
	chunked       bool
	blocks        int64 // for ordering: the largest first
}

// countSQL is the statement that counts a job's rows.
func (j countJob) countSQL() string {
	q := "SELECT count(*) FROM ONLY " + pgx.Identifier{j.schema, j.table}.Sanitize()
	switch {
	case !j.chunked:
		return q
	case j.end < 0:
		return q + fmt.Sprintf(" WHERE ctid >= '(%d,0)'::tid", j.start)
	default:
		return q + fmt.Sprintf(" WHERE ctid >= '(%d,0)'::tid AND ctid < '(%d,0)'::tid", j.start, j.end)
	}
}

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
		tables, err := listTables(ctx, env.DB, db, r.ChunkBlocks)
		if ok, why := Damage(err); ok {
			damaged = append(damaged, damagedTable{Table: db + ".(catalog)", DamageReason: why})
			continue
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		// A table counted in ranges has its count once every range is counted; a range that
		// fails leaves it uncounted (damaged, or an error).
		failed := map[string]bool{}
		err = forEach(ctx, env, db, tables, func(j countJob) int64 { return j.blocks }, func(ctx context.Context, conn *pgx.Conn, j countJob) {
			var n int64
			// No JIT: compiling the plan costs more than it saves on a count.
			_, err := conn.Exec(ctx, "SET jit = off")
			if err == nil {
				err = conn.QueryRow(ctx, j.countSQL()).Scan(&n)
			}
			mu.Lock()
			defer mu.Unlock()
			name := db + "." + j.schema + "." + j.table
			if ok, why := Damage(err); ok {
				if !failed[name] {
					damaged = append(damaged, damagedTable{Table: name, DamageReason: why})
				}
				failed[name] = true
				delete(counts, name)
				return
			}
			if err != nil {
				if !failed[name] {
					errs = append(errs, fmt.Sprintf("%s: %s", name, pgMessage(err)))
				}
				failed[name] = true
				delete(counts, name)
				return
			}
			if !failed[name] {
				counts[name] += n
			}
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

// listTables lists the counts to make in database, largest first: a table of more than
// countChunkBlocks blocks in ranges of that many (the last open-ended), on servers with TID
// range scans.
func listTables(ctx context.Context, db DB, database string, chunk int64) ([]countJob, error) {
	conn, err := db.Connect(ctx, database)
	if err != nil {
		return nil, fmt.Errorf("while connecting to database %s: %w", database, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, tablesSQL)
	if err != nil {
		return nil, wrapPG(err, "while listing tables of %s", database)
	}
	var out []countJob
	for rows.Next() {
		var j countJob
		var blocks int64
		var version int
		if err := rows.Scan(&j.schema, &j.table, &blocks, &version); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, chunkCount(j, blocks, version, chunk)...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Largest ranges first across tables, so the connections finish together.
	slices.SortStableFunc(out, func(a, b countJob) int { return cmp.Compare(b.blocks, a.blocks) })
	return out, nil
}

// chunkCount splits the count of a table of blocks blocks into ranges of at most chunk
// blocks (0: countChunkBlocks), on PostgreSQL 14 and later, where a TID range scan reads only
// its blocks (before, a range would scan the whole table).
func chunkCount(j countJob, blocks int64, serverVersionNum int, chunk int64) []countJob {
	if chunk <= 0 {
		chunk = countChunkBlocks
	}
	if blocks <= chunk || serverVersionNum < 140000 {
		j.blocks = blocks
		return []countJob{j}
	}
	var out []countJob
	for s := int64(0); s < blocks; s += chunk {
		c := j
		c.chunked, c.start, c.end, c.blocks = true, s, s+chunk, min(chunk, blocks-s)
		if c.end >= blocks {
			c.end = -1 // and whatever lies beyond the listed size
		}
		out = append(out, c)
	}
	return out
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
