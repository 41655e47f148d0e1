package checks

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Finding names of the checksum checks.
const (
	ChecksumsName   = "checksums"
	PgChecksumsName = "pg_checksums"
)

func init() {
	Register(ChecksumsName, 90, func(c Config) []Check {
		if !Enabled(c.Checksums, true) {
			return nil
		}
		return []Check{&Checksums{}}
	})
}

// Checksums reads pg_stat_database.checksum_failures after the other checks have read every
// page, and, on the cleanly stopped copy, runs pg_checksums --check when data checksums are on.
type Checksums struct {
	enabled bool
}

// Name implements Check.
func (c *Checksums) Name() string { return ChecksumsName }

// Engines implements Check: PostgreSQL data checksums: pg_stat_database and pg_checksums.
// OnByDefault implements onByDefault.
func (*Checksums) OnByDefault() bool { return true }

func (*Checksums) Engines() []string { return postgresOnly() }

// Run implements Check.
func (c *Checksums) Run(ctx context.Context, env *Env) []Finding {
	started := time.Now()
	fin := func(f Finding) []Finding { f.Seconds = time.Since(started).Seconds(); return []Finding{f} }
	conn, err := env.DB.Connect(ctx, "postgres")
	if err != nil {
		return fin(Errorf(ChecksumsName, nil, "could not connect: %v", err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var setting string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_checksums')").Scan(&setting); err != nil {
		return fin(Errorf(ChecksumsName, nil, "could not read data_checksums: %s", pgMessage(err)))
	}
	c.enabled = setting == "on"
	ev := Evidence{"dataChecksums": setting}
	rows, err := conn.Query(ctx, "SELECT coalesce(datname, '(shared)'), coalesce(checksum_failures, 0) FROM pg_stat_database")
	if err != nil {
		return fin(Errorf(ChecksumsName, ev, "could not read pg_stat_database: %s", pgMessage(err)))
	}
	failures := map[string]int64{}
	var total int64
	for rows.Next() {
		var db string
		var n int64
		if err := rows.Scan(&db, &n); err != nil {
			rows.Close()
			return fin(Errorf(ChecksumsName, ev, "could not read pg_stat_database: %v", err))
		}
		if n > 0 {
			failures[db] = n
			total += n
		}
	}
	rows.Close()
	ev["failures"] = total
	if total > 0 {
		ev["perDatabase"] = failures
		return fin(Failf(ChecksumsName, ev, "%d checksum failure(s) while reading the restored copy", total))
	}
	if !c.enabled && env.Logical {
		ev["logical"] = true
		return fin(Passf(ChecksumsName, ev, "not applicable: a logical dump was restored into a fresh cluster, whose pages the drill wrote, so page checksums would prove nothing of the backup (amcheck and the restore itself check it)"))
	}
	if !c.enabled {
		return fin(Warnf(ChecksumsName, ev, "data checksums are off: page corruption can go unnoticed (enable with initdb --data-checksums or pg_checksums --enable)"))
	}
	return fin(Passf(ChecksumsName, ev, "no checksum failures after reading every page"))
}

var badChecksumsRe = regexp.MustCompile(`(?m)^Bad checksums:\s+(\d+)`)
var scannedRe = regexp.MustCompile(`(?m)^Blocks scanned:\s+(\d+)`)

// RunStopped implements StoppedCheck: pg_checksums --check on the cleanly stopped copy.
func (c *Checksums) RunStopped(ctx context.Context, env *Env) []Finding {
	if !c.enabled || env.Exec == nil {
		return nil
	}
	started := time.Now()
	out, code, err := env.Exec(ctx, "pg_checksums", "--check", "-D", env.DataDir)
	ev := Evidence{"command": "pg_checksums --check -D " + env.DataDir, "exitCode": code}
	f := Finding{Check: PgChecksumsName, Evidence: ev}
	text := strings.TrimSpace(string(out))
	if m := scannedRe.FindStringSubmatch(text); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		ev["blocksScanned"] = n
	}
	switch m := badChecksumsRe.FindStringSubmatch(text); {
	case m != nil && m[1] != "0":
		n, _ := strconv.ParseInt(m[1], 10, 64)
		ev["badChecksums"] = n
		ev["output"] = lastLinesOf(text, 20)
		f.Status, f.Message = Fail, m[1]+" block(s) with bad checksums in the stopped copy"
	case err != nil && m == nil:
		ev["output"] = lastLinesOf(text, 20)
		// A file it cannot read to the end (a truncated or unreadable segment) is damage it found.
		if ok, line := DamagedFileOutput(text); ok {
			ev["damage"] = line
			f.Status, f.Message = Fail, "pg_checksums could not read a data file of the stopped copy: "+line
			break
		}
		f.Status, f.Message = Error, "pg_checksums could not run: "+err.Error()
	case err != nil:
		ev["output"] = lastLinesOf(text, 20)
		f.Status, f.Message = Fail, "pg_checksums reported a problem: "+lastLinesOf(text, 1)
	default:
		ev["badChecksums"] = 0
		f.Status, f.Message = Pass, "every block of the stopped copy has a valid checksum"
	}
	f.Seconds = time.Since(started).Seconds()
	return []Finding{f}
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
