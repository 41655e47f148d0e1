package checks

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// CheckTableName is the finding name of MariaDB's CHECK TABLE check.
const CheckTableName = "check-table"

// engineMariaDB is MariaDB's name in the engine registry (restore/engine), which checks must
// not import.
const engineMariaDB = "mariadb"

func mariadbOnly() []string { return []string{engineMariaDB} }

// The snapshot attributes (restore/engine/mariadb) that say where the copy ends in the binary
// log: a point-in-time recovery would continue replaying from there.
const (
	recordedBinlogFile     = "binlogFile"
	recordedBinlogPosition = "binlogPosition"
	recordedGTIDBinlogPos  = "gtidBinlogPos"
	recordedGTIDExecuted   = "gtidExecuted"
)

func init() {
	// On unless turned off; a drill of another engine does not name it skipped (OnByDefault).
	Register(CheckTableName, 10, func(c Config) []Check {
		if !Enabled(c.CheckTable, true) {
			return nil
		}
		return []Check{&CheckTable{}}
	})
}

// CheckTable runs CHECK TABLE ... EXTENDED on every base table of every database outside the
// system ones: InnoDB reads every page of every index and cross-checks the records, so a
// damaged page or an index out of step with its table is found.
type CheckTable struct{}

// Name implements Check.
func (*CheckTable) Name() string { return CheckTableName }

// Engines implements Check.
func (*CheckTable) Engines() []string { return mariadbOnly() }

// OnByDefault implements onByDefault.
func (*CheckTable) OnByDefault() bool { return true }

// mariadbTable is one table, database and name.
type mariadbTable struct{ Schema, Name string }

func (t mariadbTable) String() string { return t.Schema + "." + t.Name }

func (t mariadbTable) quoted() string { return quoteMariaDB(t.Schema) + "." + quoteMariaDB(t.Name) }

// quoteMariaDB quotes an identifier with backticks.
func quoteMariaDB(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// listMariaDBTables lists the base tables outside the system databases, largest first.
func listMariaDBTables(ctx context.Context, db *sql.DB) ([]mariadbTable, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_type = 'BASE TABLE'
		  AND table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
		ORDER BY COALESCE(data_length, 0) + COALESCE(index_length, 0) DESC, table_schema, table_name`)
	if err != nil {
		return nil, fmt.Errorf("while listing tables: %w", err)
	}
	defer rows.Close()
	var out []mariadbTable
	for rows.Next() {
		var t mariadbTable
		if err := rows.Scan(&t.Schema, &t.Name); err != nil {
			return nil, fmt.Errorf("while listing tables: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("while listing tables: %w", err)
	}
	return out, nil
}

// tableProblem is a table the server reported damaged, and what it said.
type tableProblem struct {
	Table   string `json:"table"`
	MsgType string `json:"msgType,omitempty"`
	Message string `json:"message"`
	Code    uint16 `json:"errno,omitempty"`
	// Warnings are what the server said of the table besides (InnoDB's reasons).
	Warnings []string `json:"warnings,omitempty"`
}

// Run implements Check.
func (c *CheckTable) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	ev := Evidence{}
	tables, stop := mariadbTablesFor(ctx, env, CheckTableName, ev)
	if stop != nil {
		return fin(*stop)
	}
	var mu sync.Mutex
	var damaged []tableProblem
	var warnings, unsupported, errs []string
	checked := 0
	forEachMariaDB(ctx, env.Parallel, tables, func(ctx context.Context, t mariadbTable) {
		probs, warns, unsup, err := checkOneTable(ctx, env.SQL, t)
		mu.Lock()
		defer mu.Unlock()
		damaged = append(damaged, probs...)
		warnings = append(warnings, warns...)
		if unsup {
			unsupported = append(unsupported, t.String())
		}
		switch {
		case err != nil:
			errs = append(errs, err.Error())
		case len(probs) == 0:
			checked++
		}
	})
	if err := ctx.Err(); err != nil {
		return fin(Errorf(CheckTableName, ev, "interrupted: %v", err))
	}
	// The headline is the server's own error where it gave one, not the bare status.
	slices.SortStableFunc(damaged, func(a, b tableProblem) int {
		if c := strings.Compare(a.Table, b.Table); c != 0 {
			return c
		}
		return boolOrder(a.MsgType != "error") - boolOrder(b.MsgType != "error")
	})
	ev["tables"] = len(tables)
	ev["checked"] = checked
	if len(warnings) > 0 {
		slices.Sort(warnings)
		ev["warnings"] = firstN(warnings, 50)
	}
	if len(unsupported) > 0 {
		slices.Sort(unsupported)
		ev["notCheckable"] = firstN(unsupported, 50)
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		ev["errors"] = firstN(errs, 50)
	}
	switch {
	case len(damaged) > 0:
		ev["damaged"] = firstN(damaged, 50)
		msg := damaged[0].Message
		if len(damaged[0].Warnings) > 0 {
			msg += " (" + strings.TrimPrefix(damaged[0].Warnings[0], damaged[0].Table+": ") + ")"
		}
		return fin(Failf(CheckTableName, ev, "%d problem(s) reported by CHECK TABLE ... EXTENDED, first %s: %s", len(damaged), damaged[0].Table, msg))
	case len(errs) > 0:
		return fin(Errorf(CheckTableName, ev, "could not check every table: %s", errs[0]))
	case len(tables) == 0:
		return fin(Passf(CheckTableName, ev, "no user tables to check"))
	}
	return fin(Passf(CheckTableName, ev, "CHECK TABLE ... EXTENDED found %d tables OK", checked))
}

// checkOneTable runs CHECK TABLE on t. probs are what the server reported damaged, including
// a refusal to open the table because it is damaged; err is a failure that proves nothing.
func checkOneTable(ctx context.Context, db *sql.DB, t mariadbTable) (probs []tableProblem, warnings []string, unsupported bool, err error) {
	rows, err := db.QueryContext(ctx, "CHECK TABLE "+t.quoted()+" EXTENDED")
	if err != nil {
		if ok, why := mariadbDamage(err); ok {
			why.Table = t.String()
			return []tableProblem{why}, nil, false, nil
		}
		if serverGone(err) {
			return nil, nil, false, fmt.Errorf("%s: the server dropped the connection while checking it (did it stop?): %w", t, err)
		}
		return nil, nil, false, fmt.Errorf("%s: %w", t, err)
	}
	defer rows.Close()
	sawStatus := false
	for rows.Next() {
		var table, op, msgType, msgText sql.NullString
		if err := rows.Scan(&table, &op, &msgType, &msgText); err != nil {
			return probs, warnings, false, fmt.Errorf("%s: while reading CHECK TABLE's result: %w", t, err)
		}
		text := msgText.String
		switch strings.ToLower(msgType.String) {
		case "status":
			sawStatus = true
			if text != "OK" && text != "Table is already up to date" {
				probs = append(probs, tableProblem{Table: t.String(), MsgType: "status", Message: text})
			}
		case "error":
			probs = append(probs, tableProblem{Table: t.String(), MsgType: "error", Message: text})
		case "note":
			if strings.Contains(text, "doesn't support check") {
				unsupported = true
				sawStatus = true
			}
		case "warning":
			warnings = append(warnings, t.String()+": "+text)
		}
	}
	if err := rows.Err(); err != nil {
		if ok, why := mariadbDamage(err); ok {
			why.Table = t.String()
			return append(probs, why), warnings, false, nil
		}
		return probs, warnings, false, fmt.Errorf("%s: %w", t, err)
	}
	for i := range probs {
		probs[i].Warnings = firstN(warnings, 10)
	}
	if !sawStatus && len(probs) == 0 {
		return nil, warnings, false, fmt.Errorf("%s: CHECK TABLE returned no status", t)
	}
	return probs, warnings, unsupported, nil
}

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}

// forEachMariaDB runs fn over jobs with at most n at once (the pool opens a connection each).
func forEachMariaDB[J any](ctx context.Context, n int, jobs []J, fn func(ctx context.Context, job J)) {
	n = max(1, min(n, len(jobs)))
	work := make(chan J)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				fn(ctx, j)
			}
		}()
	}
feed:
	for _, j := range jobs {
		select {
		case work <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
}

// mariadbDamageErrors are the server errors that refuse a read because the table's data or
// definition is damaged: proof the copy is unfit, not a check that could not run.
var mariadbDamageErrors = map[uint16]string{
	1017: "ER_FILE_NOT_FOUND",
	1030: "ER_GET_ERRNO",
	1033: "ER_NOT_FORM_FILE",
	1034: "ER_NOT_KEYFILE",
	1035: "ER_OLD_KEYFILE",
	1194: "ER_CRASHED_ON_USAGE",
	1195: "ER_CRASHED_ON_REPAIR",
	1712: "ER_INDEX_CORRUPT",
	1812: "ER_TABLESPACE_MISSING",
	1877: "ER_TABLE_CORRUPT",
	1932: "ER_NO_SUCH_TABLE_IN_ENGINE",
}

// handlerDamageRe are storage engine errors (ER_GET_ERRNO's N) that mean damaged data:
// HA_ERR_CRASHED (126), HA_ERR_WRONG_IN_RECORD (127), HA_ERR_CRASHED_ON_USAGE (145),
// HA_ERR_INDEX_CORRUPT (180), HA_ERR_TABLESPACE_MISSING (194), and InnoDB's ER_TABLE_CORRUPT (1877) passed through.
var handlerDamageRe = regexp.MustCompile(`(?i)got error (126|127|145|180|194|1877)\b|corrupt|crashed`)

// mariadbDamage reports whether err is MariaDB refusing a read because the data is damaged,
// and the evidence (the error number and message).
func mariadbDamage(err error) (bool, tableProblem) {
	var me *mysql.MySQLError
	if err == nil || !errors.As(err, &me) {
		return false, tableProblem{}
	}
	name, ok := mariadbDamageErrors[me.Number]
	if ok && me.Number == 1030 {
		// "Got error N from storage engine": damage only for the handler's corruption errors.
		ok = handlerDamageRe.MatchString(me.Message)
	}
	if !ok {
		return false, tableProblem{}
	}
	return true, tableProblem{MsgType: name, Message: me.Message, Code: me.Number}
}

// serverGone reports a connection the server dropped (it stopped or crashed).
func serverGone(err error) bool {
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn)
}

// addRecordedBinlog puts the binary log position recorded with the snapshot in ev: where a
// point-in-time recovery would continue replaying.
func addRecordedBinlog(ev Evidence, env *Env) {
	if pos := RecordedBinlogPosition(env.Recorded); pos != "" {
		ev["snapshotBinlogPosition"] = pos
	}
	if g := env.Recorded[recordedGTIDBinlogPos]; g != "" {
		ev["snapshotGTIDBinlogPos"] = g
	} else if g := env.Recorded[recordedGTIDExecuted]; g != "" {
		ev["snapshotGTIDExecuted"] = g
	}
}

// RecordedBinlogPosition renders a snapshot's binary log position as file:position ("" when
// none was recorded: binary logging off).
func RecordedBinlogPosition(recorded map[string]string) string {
	f, p := recorded[recordedBinlogFile], recorded[recordedBinlogPosition]
	if f == "" || p == "" {
		return ""
	}
	return f + ":" + p
}

// mariadbTablesFor lists the copy's tables for check name, with the snapshot's binlog position
// in ev; when they cannot be listed it returns the finding instead: fail when the server
// reports its catalog damaged, error when it could not be asked.
func mariadbTablesFor(ctx context.Context, env *Env, name string, ev Evidence) ([]mariadbTable, *Finding) {
	addRecordedBinlog(ev, env)
	if env.SQL == nil {
		f := Errorf(name, ev, "no connection to the restored MariaDB server")
		return nil, &f
	}
	tables, err := listMariaDBTables(ctx, env.SQL)
	if ok, why := mariadbDamage(err); ok {
		ev["damaged"] = []tableProblem{why}
		f := Failf(name, ev, "the server reports its catalog damaged: %s", why.Message)
		return nil, &f
	}
	if err != nil {
		f := Errorf(name, ev, "could not list the tables: %v", err)
		return nil, &f
	}
	return tables, nil
}
