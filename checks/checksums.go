package checks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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

// RunStopped implements StoppedCheck: every block's checksum in the cleanly stopped copy.
// When firedrill can read the copy and amcheck already read heaps whole with checksums
// verified, firedrill's own page checksum pass reads the rest (indexes, free space and
// visibility maps, init forks, what amcheck did not reach); otherwise pg_checksums --check
// reads everything.
func (c *Checksums) RunStopped(ctx context.Context, env *Env) []Finding {
	if !c.enabled {
		return nil
	}
	if env.HostDataDir != "" && (len(env.VerifiedBlocks) > 0 || env.Incremental != nil) {
		return []Finding{verifyStopped(ctx, env)}
	}
	if env.Exec == nil {
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

// verifyStopped is the checksum pass over the stopped copy that reads only what no check read
// with checksums verified (VerifyChecksums).
func verifyStopped(ctx context.Context, env *Env) Finding {
	started := time.Now()
	ev := Evidence{"method": "firedrill's page checksum pass (PostgreSQL's algorithm) over the blocks amcheck did not read; heap blocks amcheck read were verified by the server as it read them"}
	f := Finding{Check: PgChecksumsName, Evidence: ev}
	var unchanged func(string) bool
	if inc := env.Incremental; inc != nil {
		unchanged = func(file string) bool { return inc.Unchanged[file] }
	}
	scan, err := VerifyChecksumsExcept(ctx, env.HostDataDir, func(rel string) int64 { return env.VerifiedBlocks[rel] }, unchanged)
	f.Seconds = time.Since(started).Seconds()
	switch {
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// As for pg_checksums (DamagedFileOutput): a refusal or an interrupt proves nothing.
		f.Status, f.Message = Error, "could not verify the stopped copy's checksums: "+err.Error()
		return f
	case err != nil:
		// A data file that cannot be opened or read is damage the pass found.
		f.Status, f.Message = Fail, "could not read a data file of the stopped copy: "+err.Error()
		return f
	}
	ev["blocksScanned"], ev["blocksVerifiedByAmcheck"], ev["files"] = scan.Blocks, scan.SkippedBlocks, scan.Files+scan.SkippedFiles
	ev["badChecksums"] = len(scan.Bad)
	also := ""
	if inc := env.Incremental; inc != nil {
		ev["blocksUnchangedSinceBaseline"], ev["baselineSnapshot"] = scan.UnchangedBlocks, inc.BaselineSnapshot
		also = fmt.Sprintf(", %d unchanged since %s", scan.UnchangedBlocks, inc.describe())
	}
	if len(scan.Bad) > 0 {
		ev["badBlocks"] = firstN(scan.Bad, 50)
		b := scan.Bad[0]
		first := fmt.Sprintf("%s block %d: checksum %04X, content gives %04X", b.File, b.Block, b.Stored, b.Want)
		if b.Reason != "" {
			first = fmt.Sprintf("%s: could not read block %d: %s", b.File, b.Block, b.Reason)
		}
		f.Status, f.Message = Fail, fmt.Sprintf("%d block(s) with bad checksums in the stopped copy, first %s", len(scan.Bad), first)
		return f
	}
	f.Status, f.Message = Pass, fmt.Sprintf("every block of the stopped copy has a valid checksum (%d read by this pass, %d verified as amcheck read them%s)", scan.Blocks, scan.SkippedBlocks, also)
	return f
}
