package checks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// AmcheckName is the finding name of the amcheck check.
const AmcheckName = "amcheck"

func init() {
	Register(AmcheckName, 10, func(c Config) []Check {
		if !c.Amcheck.On() {
			return nil
		}
		return []Check{&Amcheck{ChunkBlocks: 8192}}
	})
}

// Amcheck runs amcheck over every database that allows connections: verify_heapam on every
// table, materialized view and TOAST table (with TOAST pointers checked), and
// bt_index_check(heapallindexed) on every valid btree index. Relations are spread over a
// bounded number of connections, largest first; large heaps are split into block ranges so
// that one big table does not leave the other connections idle.
type Amcheck struct {
	// ChunkBlocks is the largest block range verify_heapam checks in one call.
	ChunkBlocks int64
}

// Name implements Check.
func (a *Amcheck) Name() string { return AmcheckName }

// Engines implements Check: amcheck reads PostgreSQL pages (verify_heapam, bt_index_check).
// OnByDefault implements onByDefault.
func (*Amcheck) OnByDefault() bool { return true }

func (*Amcheck) Engines() []string { return postgresOnly() }

// Concurrent implements Concurrent: amcheck's queries share the Env's slots; it writes only
// Env.VerifiedBlocks, which the checksum pass on the stopped copy reads after every check.
func (*Amcheck) Concurrent() bool { return true }

type amJob struct {
	oid      uint32
	name     string
	index    bool
	start    int64
	end      int64 // inclusive; -1 for an index
	cost     int64
	database string
	// file is the relation's main fork (pg_relation_filepath); blocks a heap's planned size.
	file   string
	blocks int64
}

// heapKey names a heap across databases (shared catalogs appear in each).
func (j amJob) heapKey() string { return j.database + "/" + j.file }

// heapRead is how far amcheck got through one heap: ranges left to read, and whether one
// found a problem or failed.
type heapRead struct {
	file   string
	blocks int64
	left   int
	failed bool
}

type amProblem struct {
	Database string `json:"database"`
	Relation string `json:"relation"`
	Block    *int64 `json:"block,omitempty"`
	Offset   *int32 `json:"offset,omitempty"`
	Message  string `json:"message"`
	// SQLState is set when the problem is PostgreSQL refusing the read (see Damage).
	SQLState string `json:"sqlstate,omitempty"`
}

const relationsSQL = `
SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind = 'i',
       coalesce(pg_relation_filepath(c.oid), ''),
       pg_relation_size(c.oid) / current_setting('block_size')::bigint,
       CASE WHEN c.relkind = 'i' THEN pg_relation_size(i.indrelid) / current_setting('block_size')::bigint ELSE 0 END,
       coalesce(pg_relation_filepath(CASE WHEN c.relkind = 'i' THEN i.indrelid ELSE nullif(c.reltoastrelid, 0) END), ''),
       CASE WHEN c.relkind = 'i' OR c.reltoastrelid = 0 THEN 0
            ELSE pg_relation_size(c.reltoastrelid) / current_setting('block_size')::bigint END,
       (SELECT setting::bigint FROM pg_settings WHERE name = 'segment_size')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_am am ON am.oid = c.relam
WHERE c.relpersistence <> 't'
  AND (c.relkind IN ('r', 'm', 't')
       OR (c.relkind = 'i' AND am.amname = 'btree' AND i.indisvalid AND i.indisready))`

// planned is a database's amcheck work, and, in an incremental drill, what it left out
// because it is byte for byte what the baseline drill verified.
type planned struct {
	jobs []amJob
	// skippedIndexes and skippedHeapBlocks were left out; skippedHeaps are heaps none of
	// whose blocks were read.
	skippedIndexes, skippedHeaps, skippedHeapBlocks int64
}

// Run implements Check.
func (a *Amcheck) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	dbs, err := env.DB.Databases(ctx)
	if err != nil {
		return []Finding{Errorf(AmcheckName, nil, "could not list databases: %v", err)}
	}
	var (
		mu                     sync.Mutex
		problems               []amProblem
		errs                   []string
		heaps, indexes, blocks int64
		perDB                  = map[string]int{}
		// heapsRead follows each heap's block ranges: one whose every range was read without
		// a problem or an error was read whole, checksums verified.
		heapsRead = map[string]*heapRead{}
		// unchanged counts what an incremental drill left to the baseline.
		skipped planned
	)
	for _, db := range dbs {
		p, err := a.plan(ctx, env, db)
		if damaged, why := Damage(err); damaged {
			// The catalog itself (or the database's directory) cannot be read.
			problems = append(problems, amProblem{Database: db, Relation: "(catalog)", Message: why.Message, SQLState: why.SQLState})
			continue
		}
		if err != nil {
			return []Finding{Errorf(AmcheckName, Evidence{"database": db}, "%v", err)}
		}
		jobs := p.jobs
		skipped.skippedIndexes += p.skippedIndexes
		skipped.skippedHeaps += p.skippedHeaps
		skipped.skippedHeapBlocks += p.skippedHeapBlocks
		seen := map[uint32]bool{}
		for _, j := range jobs {
			if j.index {
				indexes++
			} else if !seen[j.oid] {
				seen[j.oid] = true
				heaps++
			}
			if !j.index {
				blocks += j.end - j.start + 1
				if j.end >= 0 && j.file != "" {
					h := heapsRead[j.heapKey()]
					if h == nil {
						h = &heapRead{file: j.file, blocks: j.blocks}
						heapsRead[j.heapKey()] = h
					}
					h.left++
				}
			}
		}
		perDB[db] = len(jobs)
		err = forEach(ctx, env, db, jobs, func(j amJob) int64 { return j.cost }, func(ctx context.Context, conn *pgx.Conn, j amJob) {
			found, err := runAmJob(ctx, conn, j)
			mu.Lock()
			defer mu.Unlock()
			problems = append(problems, found...)
			if h := heapsRead[j.heapKey()]; h != nil && !j.index {
				h.left--
				h.failed = h.failed || err != nil || len(found) > 0
			}
			if err != nil {
				if damaged, why := Damage(err); damaged {
					problems = append(problems, amProblem{Database: j.database, Relation: j.name, Message: why.Message, SQLState: why.SQLState})
				} else {
					errs = append(errs, fmt.Sprintf("%s %s: %s", j.database, j.name, pgMessage(err)))
				}
			}
		})
		if damaged, why := Damage(err); damaged {
			problems = append(problems, amProblem{Database: db, Relation: "(database)", Message: why.Message, SQLState: why.SQLState})
		} else if err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, h := range heapsRead {
		if h.left == 0 && !h.failed {
			if env.VerifiedBlocks == nil {
				env.VerifiedBlocks = map[string]int64{}
			}
			env.VerifiedBlocks[h.file] = max(env.VerifiedBlocks[h.file], h.blocks)
		}
	}
	sort.Slice(problems, func(i, j int) bool {
		if problems[i].Database != problems[j].Database {
			return problems[i].Database < problems[j].Database
		}
		return problems[i].Relation < problems[j].Relation
	})
	ev := Evidence{
		"databases": dbs, "tables": heaps, "indexes": indexes, "heapBlocks": blocks,
		"parallel": env.Parallel, "functions": "verify_heapam(check_toast => true), bt_index_check(heapallindexed => true)",
		"mode": AmcheckFull,
	}
	scope := ""
	if inc := env.Incremental; inc != nil {
		ev["mode"] = AmcheckIncremental
		ev["baselineSnapshot"], ev["baselineDrill"], ev["baselineAt"] = inc.BaselineSnapshot, inc.BaselineDrill, inc.BaselineAt.UTC()
		ev["dataFiles"], ev["unchangedDataFiles"] = inc.Files, len(inc.Unchanged)
		ev["unchangedIndexes"], ev["unchangedHeaps"], ev["unchangedHeapBlocks"] = skipped.skippedIndexes, skipped.skippedHeaps, skipped.skippedHeapBlocks
		scope = fmt.Sprintf(" (incremental: %d btree indexes and %d heap blocks unchanged since %s were not re-read)", skipped.skippedIndexes, skipped.skippedHeapBlocks, inc.describe())
	}
	f := Finding{Check: AmcheckName, Seconds: time.Since(started).Seconds(), Evidence: ev}
	switch {
	case len(problems) > 0:
		ev["corruptions"] = len(problems)
		ev["problems"] = firstN(problems, 50)
		rels := map[string]bool{}
		for _, p := range problems {
			rels[p.Database+"/"+p.Relation] = true
		}
		f.Status = Fail
		f.Message = fmt.Sprintf("%d corruption(s) in %d relation(s), first in %s.%s: %s", len(problems), len(rels), problems[0].Database, problems[0].Relation, problems[0].Message)
	case len(errs) > 0:
		ev["errors"] = firstN(errs, 50)
		f.Status = Error
		f.Message = fmt.Sprintf("could not check everything: %s", errs[0])
	default:
		f.Status = Pass
		f.Message = fmt.Sprintf("%d tables and %d btree indexes in %d databases verified, no corruption%s", heaps, indexes, len(dbs), scope)
	}
	return []Finding{f}
}

func firstN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// plan installs amcheck in database db and lists its work, largest first. In an incremental
// drill (env.Incremental) it leaves out what is byte for byte what the baseline verified:
//   - a heap's block range is checked when a segment file holding it changed, and the whole
//     heap when its TOAST table changed (its TOAST pointers must still resolve);
//   - a btree index is checked, against its whole heap (heapallindexed), when any of its own
//     files or of its heap's main fork changed.
func (a *Amcheck) plan(ctx context.Context, env *Env, db string) (planned, error) {
	var p planned
	conn, err := env.DB.Connect(ctx, db)
	if err != nil {
		return p, fmt.Errorf("while connecting to database %s: %w", db, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The restored copy is scratch: installing the extension there touches nothing else.
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS amcheck"); err != nil {
		return p, wrapPG(err, "while installing the amcheck extension in database %s (is postgresql-contrib installed for this major version?)", db)
	}
	rows, err := conn.Query(ctx, relationsSQL)
	if err != nil {
		return p, wrapPG(err, "while listing relations of database %s", db)
	}
	chunk := a.ChunkBlocks
	if chunk <= 0 {
		chunk = 8192
	}
	inc := env.Incremental
	for rows.Next() {
		var oid uint32
		var name, file, other string
		var isIndex bool
		var blocks, heapBlocks, toastBlocks, segBlocks int64
		if err := rows.Scan(&oid, &name, &isIndex, &file, &blocks, &heapBlocks, &other, &toastBlocks, &segBlocks); err != nil {
			rows.Close()
			return p, fmt.Errorf("while listing relations of database %s: %w", db, err)
		}
		if isIndex {
			if inc != nil && !inc.anyChanged(file, blocks, segBlocks) && !inc.anyChanged(other, heapBlocks, segBlocks) {
				p.skippedIndexes++
				continue
			}
			p.jobs = append(p.jobs, amJob{oid: oid, name: name, index: true, end: -1, cost: blocks + heapBlocks, database: db})
			continue
		}
		if blocks == 0 {
			p.jobs = append(p.jobs, amJob{oid: oid, name: name, start: 0, end: -1, cost: 1, database: db})
			continue
		}
		// A changed TOAST table: every TOAST pointer of the heap is followed again.
		toastChanged := other != "" && inc != nil && inc.anyChanged(other, toastBlocks, segBlocks)
		var heapJobs []amJob
		for s := int64(0); s < blocks; s += chunk {
			e := min(s+chunk, blocks) - 1
			if inc != nil && !toastChanged && !inc.changed(file, s, e, segBlocks) {
				p.skippedHeapBlocks += e - s + 1
				continue
			}
			heapJobs = append(heapJobs, amJob{oid: oid, name: name, start: s, end: e, cost: e - s + 1, database: db, file: file, blocks: blocks})
		}
		switch {
		case len(heapJobs) == 0:
			p.skippedHeaps++
		case int64(len(heapJobs)) < (blocks+chunk-1)/chunk:
			// Read in part: the checksum pass is told nothing of it (file ""), and reads the
			// changed segments itself.
			for i := range heapJobs {
				heapJobs[i].file = ""
			}
		}
		p.jobs = append(p.jobs, heapJobs...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("while listing relations of database %s: %w", db, err)
	}
	sort.SliceStable(p.jobs, func(i, j int) bool { return p.jobs[i].cost > p.jobs[j].cost })
	return p, nil
}

func runAmJob(ctx context.Context, conn *pgx.Conn, j amJob) ([]amProblem, error) {
	if j.index {
		_, err := conn.Exec(ctx, "SELECT bt_index_check($1::oid::regclass, true)", j.oid)
		return nil, err
	}
	var rows pgx.Rows
	var err error
	if j.end < 0 { // empty relation: nothing to range over
		rows, err = conn.Query(ctx, "SELECT blkno, offnum, msg FROM verify_heapam($1::oid::regclass, false, true, 'none')", j.oid)
	} else {
		rows, err = conn.Query(ctx, "SELECT blkno, offnum, msg FROM verify_heapam($1::oid::regclass, false, true, 'none', $2, $3)", j.oid, j.start, j.end)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []amProblem
	for rows.Next() {
		var blk *int64
		var off *int32
		var msg string
		if err := rows.Scan(&blk, &off, &msg); err != nil {
			return out, err
		}
		out = append(out, amProblem{Database: j.database, Relation: j.name, Block: blk, Offset: off, Message: strings.TrimSpace(msg)})
	}
	return out, rows.Err()
}
